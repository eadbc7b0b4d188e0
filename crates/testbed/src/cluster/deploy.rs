//! The cluster's releases under Worker Versioning, done as an operator does them
//! (docs/operations.md, "Releasing a new version"): the new build's workers start beside the
//! old ones, the new build is promoted (new orders start on it), the old build drains (every
//! order pinned to it finishes there), then its workers stop.

use super::Cluster;
use crate::release::{self, Release};
use anyhow::Context;
use std::time::{Duration, Instant};

impl Cluster {
    fn versioned(&self) -> anyhow::Result<&Release> {
        self.release.as_ref().context("the cluster's workers are not versioned")
    }

    /// Makes `build` its deployment's current version.
    pub async fn promote(&self, build: u32) -> anyhow::Result<()> {
        let version = self.versioned()?.version(build);
        release::promote(self.temporal_client().await?, &version).await
    }

    /// Sends new orders to unversioned workers again.
    pub async fn promote_unversioned(&self) -> anyhow::Result<()> {
        let deployment = &self.versioned()?.deployment;
        release::promote_unversioned(self.temporal_client().await?, deployment).await
    }

    /// Orders still running on `build`.
    pub async fn open_orders_on(&self, build: u32) -> anyhow::Result<u64> {
        let version = self.versioned()?.version(build);
        release::open_orders(self.temporal_client().await?, &version).await
    }

    /// Releases the next build: its workers start beside the current ones, it is promoted,
    /// the current build drains (at most `drain_bound`), then the current build's workers stop
    /// (SIGTERM, what is in flight finishes). `orderflow serve` processes, which also serve
    /// HTTP on a fixed port, are restarted in place on the new build after the drain. If the
    /// old build does not drain in time its workers are kept (stopping them would strand its
    /// orders) and the detail says so.
    pub async fn rolling_deploy(&mut self, drain_bound: Duration) -> anyhow::Result<String> {
        let old = self.versioned()?.build;
        let new = old + 1;
        let build_id = Release::build_id(new);
        let mut successors = Vec::new();
        for worker in &self.workers {
            let name =
                format!("{}-{build_id}", worker.name.split("-build-").next().unwrap_or("worker"));
            let mut next = worker.successor(&name, "TEMPORAL_WORKER_BUILD_ID", &build_id);
            next.start()?;
            successors.push(next);
        }
        self.promote(new).await?;
        if let Some(release) = self.release.as_mut() {
            release.build = new;
        }
        // Drained: no open order on the old build, three times in a row over two seconds (the
        // server's count lags an order's start a little).
        let started = Instant::now();
        let mut quiet = 0;
        while quiet < 3 {
            let open = self.open_orders_on(old).await?;
            quiet = if open == 0 { quiet + 1 } else { 0 };
            if open > 0 && started.elapsed() >= drain_bound {
                // Stopping the old workers would strand those orders: keep every worker.
                self.workers.extend(successors);
                anyhow::bail!(
                    "{build_id} promoted, but {open} orders still on build-{old} after {} s: \
                     its workers kept",
                    drain_bound.as_secs()
                );
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let drained_in = started.elapsed();
        let retiring = std::mem::replace(&mut self.workers, successors);
        for mut worker in retiring {
            worker.stop(Duration::from_secs(10)).await;
            self.retired.push(worker);
        }
        for server in &mut self.servers {
            server.stop(Duration::from_secs(10)).await;
            server.set_env("TEMPORAL_WORKER_BUILD_ID", Some(&build_id));
            server.start()?;
        }
        Ok(format!(
            "{build_id} promoted, build-{old} drained in {:.1}s and its workers stopped",
            drained_in.as_secs_f64()
        ))
    }
}
