//! Releases under Worker Versioning (docs/operations.md, "Releasing a new version"), done as an
//! operator does them with `temporal worker deployment set-current-version` and `temporal
//! workflow count`, over Temporal's API: a new build's workers start beside the old ones, the
//! build is promoted to the deployment's current version (new orders go to it), and the old
//! build's workers stop once no order pinned to it is open. The e2e rolling-deploy test and
//! the cluster (`cluster::deploy`) both use these.

use anyhow::Context;
use std::time::Duration;
use temporalio_client::tonic::Request;
use temporalio_client::{Client, NamespacedClient};
use temporalio_common::protos::temporal::api::workflowservice::v1::{
    CountWorkflowExecutionsRequest, SetWorkerDeploymentCurrentVersionRequest,
};
use temporalio_common::worker::WorkerDeploymentVersion;

/// A deployment's workers and the build they run, numbered from 1.
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

    /// `build` of this deployment, as Temporal's API names a version.
    pub fn version(&self, build: u32) -> WorkerDeploymentVersion {
        WorkerDeploymentVersion::builder()
            .deployment_name(self.deployment.clone())
            .build_id(Self::build_id(build))
            .build()
    }

    /// The environment that versions a worker process.
    pub fn worker_env(&self) -> [(String, String); 2] {
        [
            ("TEMPORAL_WORKER_DEPLOYMENT_NAME".to_owned(), self.deployment.clone()),
            ("TEMPORAL_WORKER_BUILD_ID".to_owned(), Self::build_id(self.build)),
        ]
    }
}

/// How long `promote` waits for the version's workers to have polled: the server refuses to
/// promote a version it has not seen.
const PROMOTE_PATIENCE: Duration = Duration::from_secs(60);

/// Makes `version` its deployment's current version: from now on new orders start on it.
pub async fn promote(client: &Client, version: &WorkerDeploymentVersion) -> anyhow::Result<()> {
    set_current(client, &version.deployment_name, &version.build_id)
        .await
        .with_context(|| format!("promoting {}", name(version)))
}

/// Sends new orders of `deployment` to unversioned workers again.
pub async fn promote_unversioned(client: &Client, deployment: &str) -> anyhow::Result<()> {
    // An empty build id is Temporal's "no current version": the unversioned workers.
    set_current(client, deployment, "")
        .await
        .with_context(|| format!("making unversioned workers current in {deployment}"))
}

async fn set_current(
    client: &Client,
    deployment: &str,
    build_id: &str,
) -> Result<(), temporalio_client::tonic::Status> {
    let deadline = tokio::time::Instant::now() + PROMOTE_PATIENCE;
    loop {
        let request = SetWorkerDeploymentCurrentVersionRequest {
            namespace: client.namespace(),
            deployment_name: deployment.to_owned(),
            build_id: build_id.to_owned(),
            identity: "orderflow-release".into(),
            ..Default::default()
        };
        let mut service = client.connection().workflow_service();
        match service.set_worker_deployment_current_version(Request::new(request)).await {
            Ok(_) => return Ok(()),
            // Unknown until its workers have polled; refused while another change is applied.
            Err(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(status) => return Err(status),
        }
    }
}

/// Orders still running on `version`: its workers may stop when this reaches zero.
pub async fn open_orders(
    client: &Client,
    version: &WorkerDeploymentVersion,
) -> anyhow::Result<u64> {
    let query = format!(
        "TemporalWorkerDeploymentVersion = '{}' AND ExecutionStatus = 'Running'",
        name(version)
    );
    count_workflows(client, &query)
        .await
        .with_context(|| format!("counting the open orders of {}", name(version)))
}

/// Workflows matching a visibility `query`.
pub async fn count_workflows(client: &Client, query: &str) -> anyhow::Result<u64> {
    let request =
        CountWorkflowExecutionsRequest { namespace: client.namespace(), query: query.to_owned() };
    let mut service = client.connection().workflow_service();
    let response = service.count_workflow_executions(Request::new(request)).await?;
    Ok(u64::try_from(response.into_inner().count).unwrap_or(0))
}

/// The version as Temporal names it in search attributes and the CLI.
pub fn name(version: &WorkerDeploymentVersion) -> String {
    format!("{}:{}", version.deployment_name, version.build_id)
}
