//! What Worker Versioning costs (docs/operations.md, "Releasing a new version"): `orderflow serve` saturated
//! as an unversioned worker with eager start (the default), then without (a versioned `serve`
//! never starts orders eagerly), then restarted as a worker deployment version (Pinned),
//! promoted, and saturated again; back to back in one run, on the same database. Then it is put back
//! unversioned for the phases after it. The earlier phase has the smaller database, so the
//! comparison leans, if anything, against versioning.

use super::payments::{restart_server, saturate};
use crate::cluster::Cluster;
use crate::release::Release;
use serde::Serialize;
use std::time::Duration;

const WORKER_DEPLOYMENT: &str = "orderflow-bench";

#[derive(Debug, Serialize)]
pub struct VersioningCost {
    /// Orders/s saturated with an unversioned worker, orders started eagerly (the default).
    pub unversioned_eager_saturated: f64,
    /// Orders/s saturated with an unversioned worker, orders started through the task queue.
    pub unversioned_saturated: f64,
    /// Orders/s saturated with the worker as a promoted deployment version, orders pinned.
    pub versioned_saturated: f64,
    /// How much slower versioning made the saturated rate, in percent (negative: faster),
    /// against the unversioned worker without eager start.
    pub cost_percent: f64,
}

impl std::fmt::Display for VersioningCost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "worker versioning: saturated {:.1}/s unversioned with eager start, {:.1}/s without, \
             {:.1}/s pinned to a version (no eager start; {:+.1}% against the same without)",
            self.unversioned_eager_saturated,
            self.unversioned_saturated,
            self.versioned_saturated,
            -self.cost_percent
        )
    }
}

pub async fn run(
    cluster: &mut Cluster,
    products: &[(String, String)],
    phase: Duration,
    concurrency: usize,
) -> anyhow::Result<VersioningCost> {
    restart_server(cluster).await?;
    let label = "versioning, saturated unversioned, eager start";
    let eager = saturate(cluster, products, phase, concurrency, label).await?;
    // A versioned `serve` never starts orders eagerly; compare like with like.
    cluster.servers[0].set_env("EAGER_WORKFLOW_START", Some("false"));
    restart_server(cluster).await?;
    let label = "versioning, saturated unversioned, no eager start";
    let unversioned = saturate(cluster, products, phase, concurrency, label).await?;

    let release = Release::first(WORKER_DEPLOYMENT.to_owned());
    for (key, value) in release.worker_env() {
        cluster.servers[0].set_env(&key, Some(&value));
    }
    cluster.release = Some(release.clone());
    restart_server(cluster).await?;
    cluster.promote(release.build).await?;
    let label = "versioning, saturated pinned to a version";
    let versioned = saturate(cluster, products, phase, concurrency, label).await;

    // Back to unversioned, whatever happened: new orders go to unversioned workers again.
    for (key, _) in release.worker_env() {
        cluster.servers[0].set_env(&key, None);
    }
    cluster.servers[0].set_env("EAGER_WORKFLOW_START", None);
    restart_server(cluster).await?;
    cluster.promote_unversioned().await?;
    cluster.release = None;
    let versioned = versioned?;
    let cost = if unversioned > 0.0 { (1.0 - versioned / unversioned) * 100.0 } else { 0.0 };
    let result = VersioningCost {
        unversioned_eager_saturated: eager,
        unversioned_saturated: unversioned,
        versioned_saturated: versioned,
        cost_percent: cost,
    };
    println!("{result}");
    Ok(result)
}
