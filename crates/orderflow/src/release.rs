//! Releases under Worker Versioning (README "Releasing a new version"): a new build's workers
//! start beside the old ones, the build is promoted to the deployment's current version (new
//! orders go to it), and the old build's workers stop once no order pinned to it is open.
//! Operators do the same with `temporal worker deployment set-current-version` and
//! `temporal workflow count`; the test suite and the chaos suite use these.

use anyhow::Context;
use std::time::Duration;
use temporalio_client::tonic::Request;
use temporalio_client::{Client, NamespacedClient};
use temporalio_common::protos::temporal::api::workflowservice::v1::{
    CountWorkflowExecutionsRequest, SetWorkerDeploymentCurrentVersionRequest,
};
use temporalio_common::worker::WorkerDeploymentVersion;

/// How long `promote` waits for the version's workers to have polled: the server refuses to
/// promote a version it has not seen.
const PROMOTE_PATIENCE: Duration = Duration::from_secs(60);

/// Makes `version` its deployment's current version: from now on new orders start on it.
pub async fn promote(client: &Client, version: &WorkerDeploymentVersion) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + PROMOTE_PATIENCE;
    loop {
        let request = SetWorkerDeploymentCurrentVersionRequest {
            namespace: client.namespace(),
            deployment_name: version.deployment_name.clone(),
            build_id: version.build_id.clone(),
            identity: "orderflow-release".into(),
            ..Default::default()
        };
        let mut service = client.connection().workflow_service();
        match service.set_worker_deployment_current_version(Request::new(request)).await {
            Ok(_) => return Ok(()),
            // Unknown until its workers have polled; refused while another change is applied.
            Err(status) if tokio::time::Instant::now() < deadline => {
                tracing::debug!(%status, "the version cannot be promoted yet");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(status) => {
                return Err(status).with_context(|| format!("promoting {}", name(version)));
            }
        }
    }
}

/// Orders still running on `version`: its workers may stop when this reaches zero.
pub async fn open_orders(
    client: &Client,
    version: &WorkerDeploymentVersion,
) -> anyhow::Result<u64> {
    let request = CountWorkflowExecutionsRequest {
        namespace: client.namespace(),
        query: format!(
            "TemporalWorkerDeploymentVersion = '{}' AND ExecutionStatus = 'Running'",
            name(version)
        ),
    };
    let mut service = client.connection().workflow_service();
    let response = service
        .count_workflow_executions(Request::new(request))
        .await
        .with_context(|| format!("counting the open orders of {}", name(version)))?;
    Ok(u64::try_from(response.into_inner().count).unwrap_or(0))
}

/// The version as Temporal names it in search attributes and the CLI.
pub fn name(version: &WorkerDeploymentVersion) -> String {
    format!("{}:{}", version.deployment_name, version.build_id)
}
