//! A cluster's releases under Worker Versioning (README "Releasing a new version"), done as an
//! operator does them: the new build's workers start beside the old ones, the new build is
//! promoted (new orders start on it), the old build drains (every order pinned to it
//! finishes there), then its workers stop.

use crate::cluster::Cluster;
use anyhow::Context;
use std::time::{Duration, Instant};
use tokio::process::Command;

/// The workers' deployment and the build they run.
#[derive(Debug, Clone)]
pub struct Release {
    pub deployment: String,
    pub build: u32,
}

impl Release {
    pub fn first(deployment: String) -> Self {
        Self { deployment, build: 1 }
    }

    pub fn build_id(build: u32) -> String {
        format!("build-{build}")
    }

    /// The version as Temporal names it (search attribute `TemporalWorkerDeploymentVersion`).
    pub fn version(&self, build: u32) -> String {
        format!("{}:{}", self.deployment, Self::build_id(build))
    }

    /// The environment that versions a worker process.
    pub fn worker_env(&self) -> [(String, String); 2] {
        [
            ("TEMPORAL_WORKER_DEPLOYMENT_NAME".to_owned(), self.deployment.clone()),
            ("TEMPORAL_WORKER_BUILD_ID".to_owned(), Self::build_id(self.build)),
        ]
    }
}

/// How long `promote` waits for the build's workers to have polled (the server refuses to
/// promote a version it has not seen).
const PROMOTE_PATIENCE: Duration = Duration::from_secs(60);

impl Cluster {
    /// Makes `build` its deployment's current version, with the Temporal CLI.
    pub async fn promote(&self, build: u32) -> anyhow::Result<()> {
        let release = self.release.as_ref().context("the cluster's workers are not versioned")?;
        let deadline = Instant::now() + PROMOTE_PATIENCE;
        loop {
            let output = Command::new(self.temporal_cli())
                .args(["worker", "deployment", "set-current-version", "--yes"])
                .args(["--address", &self.temporal_address])
                .args(["--deployment-name", &release.deployment])
                .args(["--build-id", &Release::build_id(build)])
                .output()
                .await?;
            if output.status.success() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                anyhow::bail!(
                    "could not promote {}: {}",
                    release.version(build),
                    String::from_utf8_lossy(&output.stderr).trim()
                );
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Sends new orders to unversioned workers again.
    pub async fn promote_unversioned(&self) -> anyhow::Result<()> {
        let release = self.release.as_ref().context("the cluster's workers are not versioned")?;
        let output = Command::new(self.temporal_cli())
            .args(["worker", "deployment", "set-current-version", "--yes", "--unversioned"])
            .args(["--address", &self.temporal_address])
            .args(["--deployment-name", &release.deployment])
            .output()
            .await?;
        anyhow::ensure!(
            output.status.success(),
            "could not make unversioned workers current: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
        Ok(())
    }

    /// Orders still running on `build`.
    pub async fn open_orders_on(&self, build: u32) -> anyhow::Result<u64> {
        let release = self.release.as_ref().context("the cluster's workers are not versioned")?;
        let version = release.version(build);
        let query = format!(
            "TemporalWorkerDeploymentVersion=\"{version}\" AND ExecutionStatus=\"Running\""
        );
        self.count_workflows(&query).await
    }

    /// Releases the next build: its workers start beside the current ones, it is promoted,
    /// the current build drains (at most `drain_bound`), then the current build's workers stop
    /// (SIGTERM, what is in flight finishes). `orderflow serve` processes, which also serve
    /// HTTP on a fixed port, are restarted in place on the new build after the drain. If the
    /// old build does not drain in time its workers are kept (stopping them would strand its
    /// orders) and the detail says so.
    pub async fn rolling_deploy(&mut self, drain_bound: Duration) -> anyhow::Result<String> {
        let old = self.release.as_ref().context("the cluster's workers are not versioned")?.build;
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
