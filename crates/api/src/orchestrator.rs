//! The API's view of Temporal: start an order's workflow, ask whether it exists, cancel it,
//! read its state. Keeps the SDK's types and error cases out of the handlers.

use crate::ApiError;
use opentelemetry::trace::FutureExt as _;
use orderflow_domain::{DatabaseId, NewOrder, OrderState, WorkflowId};
use orderflow_workflow::{CancelAccepted, OrderInput, OrderWorkflow, PaymentAnswer};
use std::time::Duration;
use temporalio_client::errors::{
    WorkflowInteractionError, WorkflowQueryError, WorkflowStartError, WorkflowUpdateError,
};
use temporalio_client::tonic::{Code, Status};
use temporalio_client::{
    Client, RpcOptions, WorkflowDescribeOptions, WorkflowExecuteUpdateOptions,
    WorkflowExecutionStatus, WorkflowGetResultOptions, WorkflowIdReusePolicy, WorkflowQueryOptions,
    WorkflowSignalOptions, WorkflowStartOptions,
};
use temporalio_common::MemoValues;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// How long the API waits for Temporal (and, for updates and queries, for a worker).
const RPC_TIMEOUT: Duration = Duration::from_secs(10);

/// The workflow task timeout of an order unless configured (`WORKFLOW_TASK_TIMEOUT_MS`); see
/// docs/operations.md, "Why tasks overran, and the fixes", for how it was chosen.
pub const DEFAULT_WORKFLOW_TASK_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct Orchestrator {
    client: Client,
    namespace: String,
    task_queue: String,
    task_timeout: Duration,
    /// The database this API writes to: every order it starts carries it.
    database: DatabaseId,
    /// Whether to ask for eager start (see `without_eager_start`).
    eager_start: bool,
}

/// What Temporal knows of an order's workflow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Execution {
    /// Running, or closed with this status; `customer` is whose order it is (from the memo
    /// its start recorded).
    Known { status: WorkflowExecutionStatus, customer: String },
    /// No such workflow, or not one of this deployment's orders.
    Unknown,
}

/// The memo key that names the order's customer, so that whose order it is can be told before
/// its row exists.
const CUSTOMER_MEMO: &str = "customer_id";

/// The memo key that names the database the order belongs to: deployments sharing a namespace
/// see each other's workflows, and one must never report on or cancel another's orders.
const DATABASE_MEMO: &str = "database_id";

/// Why no worker can take new orders (`/ready`): a sentence anyone may read, and the detail,
/// for the log only (it can name the server's internals).
#[derive(Debug)]
pub struct NotPolled {
    pub reason: &'static str,
    pub detail: String,
}

impl NotPolled {
    fn no_worker(detail: impl Into<String>) -> Self {
        Self { reason: "no worker polls for orders", detail: detail.into() }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cancellation {
    Accepted(CancelAccepted),
    /// The workflow refused: the reason is the detail for a 409.
    Refused(String),
    /// There is no running workflow to ask (it has finished, or never existed).
    NotRunning,
}

impl Orchestrator {
    pub fn new(client: Client, task_queue: impl Into<String>, database: DatabaseId) -> Self {
        use temporalio_client::NamespacedClient;
        Self {
            namespace: client.namespace(),
            client,
            task_queue: task_queue.into(),
            task_timeout: DEFAULT_WORKFLOW_TASK_TIMEOUT,
            database,
            eager_start: true,
        }
    }

    /// Orders start through the task queue, never eagerly on this process's worker. For a
    /// versioned worker (`orderflow serve` with Worker Versioning): an order started eagerly
    /// is pinned to this process's build, whichever version is current.
    pub fn without_eager_start(self) -> Self {
        Self { eager_start: false, ..self }
    }

    /// The workflow task timeout of the orders this starts.
    pub fn with_task_timeout(self, task_timeout: Duration) -> Self {
        Self { task_timeout, ..self }
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Starts the order's workflow. Starting it again is not an error (its id is the order's,
    /// and the reuse policy forbids a second run), which is what makes retries safe.
    pub async fn start(&self, order: NewOrder) -> Result<(), ApiError> {
        let mut memo = MemoValues::new();
        memo.insert(CUSTOMER_MEMO, order.customer_id.as_str().to_owned());
        memo.insert(DATABASE_MEMO, self.database.to_string());
        let options = WorkflowStartOptions::new(
            self.task_queue.clone(),
            order.order_id.workflow_id().to_string(),
        )
        .id_reuse_policy(WorkflowIdReusePolicy::RejectDuplicate)
        // With a worker in this process (`orderflow serve`), the server hands the first
        // workflow task straight back in the start response: one round trip saved per order.
        .enable_eager_workflow_start(self.eager_start)
        // Steps run as local activities inside a workflow task; a long step keeps that task
        // open and the worker heartbeats it at 80% of this timeout. Only then can a pending
        // cancel update reach the workflow, so this bounds how long a cancel request waits.
        .task_timeout(self.task_timeout)
        .rpc_options(rpc_options())
        .memo(memo)
        .build();
        let input = OrderInput { order, database: Some(self.database) };
        match in_this_trace(self.client.start_workflow(OrderWorkflow::run, input, options)).await {
            Ok(_) | Err(WorkflowStartError::AlreadyStarted { .. }) => Ok(()),
            Err(WorkflowStartError::Rpc(status)) => Err(unavailable(&status)),
            Err(other) => Err(ApiError::Internal(other.into())),
        }
    }

    /// What Temporal knows of the order's workflow; `Unknown` too for a workflow of another
    /// deployment (another database) that shares the namespace.
    pub async fn execution(&self, workflow: WorkflowId) -> Result<Execution, ApiError> {
        let handle = self.client.get_workflow_handle::<OrderWorkflow>(workflow.to_string());
        let options = WorkflowDescribeOptions::builder().rpc_options(rpc_options()).build();
        match handle.describe(options).await {
            Ok(description) => {
                let memo = |key| description.memo().get::<String>(key).ok().flatten();
                Ok(match (memo(DATABASE_MEMO), memo(CUSTOMER_MEMO)) {
                    (Some(database), Some(customer)) if database == self.database.to_string() => {
                        Execution::Known { status: description.status(), customer }
                    }
                    _ => Execution::Unknown,
                })
            }
            Err(WorkflowInteractionError::NotFound(_)) => Ok(Execution::Unknown),
            Err(WorkflowInteractionError::Rpc(status)) => Err(unavailable(&status)),
            Err(other) => Err(ApiError::Internal(other.into())),
        }
    }

    pub async fn cancel(&self, workflow: WorkflowId) -> Result<Cancellation, ApiError> {
        let handle = self.client.get_workflow_handle::<OrderWorkflow>(workflow.to_string());
        let options = WorkflowExecuteUpdateOptions::builder().rpc_options(rpc_options()).build();
        match in_this_trace(handle.execute_update(OrderWorkflow::cancel, (), options)).await {
            Ok(accepted) => Ok(Cancellation::Accepted(accepted)),
            Err(WorkflowUpdateError::Failed(failure)) => Ok(Cancellation::Refused(failure.message)),
            Err(WorkflowUpdateError::NotFound(_)) => Ok(Cancellation::NotRunning),
            Err(WorkflowUpdateError::Rpc(status)) if status.code() == Code::FailedPrecondition => {
                Ok(Cancellation::NotRunning)
            }
            Err(WorkflowUpdateError::Rpc(status)) => Err(unavailable(&status)),
            Err(other) => Err(ApiError::Internal(other.into())),
        }
    }

    /// Hands the provider's answer to the order's workflow. `Ok(true)` once Temporal has
    /// recorded it (from then on its delivery is Temporal's job); `Ok(false)` if the workflow
    /// is no longer running. The event id is the signal's request id, so a retried signal is
    /// recorded once.
    pub async fn signal_payment(
        &self,
        workflow: WorkflowId,
        answer: PaymentAnswer,
    ) -> Result<bool, ApiError> {
        let handle = self.client.get_workflow_handle::<OrderWorkflow>(workflow.to_string());
        let options = WorkflowSignalOptions::builder()
            .request_id(answer.event_id.clone())
            .rpc_options(rpc_options())
            .build();
        match in_this_trace(handle.signal(OrderWorkflow::payment_answered, answer, options)).await {
            Ok(()) => Ok(true),
            Err(WorkflowInteractionError::NotFound(_)) => Ok(false),
            Err(WorkflowInteractionError::Rpc(status)) => Err(unavailable(&status)),
            Err(other) => Err(ApiError::Internal(other.into())),
        }
    }

    /// The workflow's state object; `None` if Temporal has no such workflow.
    ///
    /// A finished order's state is its result, which Temporal keeps in the history: read
    /// without a worker. That matters with Worker Versioning, where a query goes to the workers
    /// of the order's build, which are stopped once their orders have drained.
    pub async fn state(&self, workflow: WorkflowId) -> Result<Option<OrderState>, ApiError> {
        let handle = self.client.get_workflow_handle::<OrderWorkflow>(workflow.to_string());
        let describe = WorkflowDescribeOptions::builder().rpc_options(rpc_options()).build();
        match handle.describe(describe).await {
            Ok(d) if d.status() == WorkflowExecutionStatus::Completed => {
                let options = WorkflowGetResultOptions::default();
                return match tokio::time::timeout(RPC_TIMEOUT, handle.get_result(options)).await {
                    Ok(Ok(state)) => Ok(Some(state)),
                    Ok(Err(e)) => {
                        Err(ApiError::Internal(anyhow::anyhow!("reading the result: {e}")))
                    }
                    Err(_) => Err(ApiError::Unavailable(
                        "Temporal did not answer in time; try again.".into(),
                    )),
                };
            }
            Ok(_) => {}
            Err(WorkflowInteractionError::NotFound(_)) => return Ok(None),
            Err(WorkflowInteractionError::Rpc(status)) => return Err(unavailable(&status)),
            Err(other) => return Err(ApiError::Internal(other.into())),
        }
        let options = WorkflowQueryOptions::builder().rpc_options(rpc_options()).build();
        match handle.query(OrderWorkflow::state, (), options).await {
            Ok(state) => Ok(Some(state)),
            Err(WorkflowQueryError::NotFound(_)) => Ok(None),
            Err(WorkflowQueryError::Rpc(status)) => Err(unavailable(&status)),
            Err(other) => Err(ApiError::Internal(other.into())),
        }
    }

    /// Whether a worker that can take new orders is polling the order task queue right now (for
    /// `/ready`).
    pub async fn workers_polling(&self) -> Result<(), NotPolled> {
        use temporalio_client::tonic::Request;
        use temporalio_common::protos::temporal::api::enums::v1::{
            TaskQueueKind, TaskQueueType, WorkerVersioningMode,
        };
        use temporalio_common::protos::temporal::api::taskqueue::v1::TaskQueue;
        use temporalio_common::protos::temporal::api::workflowservice::v1::{
            DescribeTaskQueueRequest, DescribeWorkerDeploymentRequest,
        };
        let mut request = Request::new(DescribeTaskQueueRequest {
            namespace: self.namespace.clone(),
            task_queue: Some(TaskQueue {
                name: self.task_queue.clone(),
                kind: TaskQueueKind::Normal as i32,
                ..Default::default()
            }),
            task_queue_type: TaskQueueType::Workflow as i32,
            ..Default::default()
        });
        request.set_timeout(Duration::from_secs(2));
        let mut service = self.client.connection().workflow_service();
        let response = service
            .describe_task_queue(request)
            .await
            .map_err(|s| NotPolled::no_worker(s.message()))?;
        let pollers = response.into_inner().pollers;
        if pollers.is_empty() {
            return Err(NotPolled::no_worker(format!("no poller on {}", self.task_queue)));
        }
        // With Worker Versioning new orders go to the deployment's current version (to
        // unversioned workers while none is set): a poller of another version cannot take them.
        let versioned: Vec<_> = pollers
            .iter()
            .filter_map(|p| p.deployment_options.as_ref())
            .filter(|d| d.worker_versioning_mode == WorkerVersioningMode::Versioned as i32)
            .collect();
        let unversioned_polls = versioned.len() < pollers.len();
        let Some(deployment) = versioned.first().map(|d| d.deployment_name.clone()) else {
            return Ok(());
        };
        let request = DescribeWorkerDeploymentRequest {
            namespace: self.namespace.clone(),
            deployment_name: deployment.clone(),
        };
        let mut request = Request::new(request);
        request.set_timeout(Duration::from_secs(2));
        let response = service
            .describe_worker_deployment(request)
            .await
            .map_err(|s| NotPolled::no_worker(s.message()))?;
        let current = response
            .into_inner()
            .worker_deployment_info
            .and_then(|info| info.routing_config)
            .and_then(|routing| routing.current_deployment_version)
            .filter(|v| !v.build_id.is_empty());
        match current {
            Some(current) if versioned.iter().any(|d| d.build_id == current.build_id) => Ok(()),
            Some(current) => Err(NotPolled {
                reason: "no worker of the worker deployment's current version polls for orders",
                detail: format!("current version {deployment}:{}", current.build_id),
            }),
            None if unversioned_polls => Ok(()),
            None => Err(NotPolled {
                reason: "workers poll, but their worker deployment has no current version: new \
                         orders wait until one is promoted",
                detail: format!("worker deployment {deployment}"),
            }),
        }
    }

    /// The frontend's gRPC health check, for `/health`.
    pub async fn ping(&self) -> Result<(), String> {
        use temporalio_client::tonic::Request;
        use temporalio_common::protos::grpc::health::v1::HealthCheckRequest;
        let mut request = Request::new(HealthCheckRequest {
            service: "temporal.api.workflowservice.v1.WorkflowService".into(),
        });
        request.set_timeout(Duration::from_secs(2));
        let mut health = self.client.connection().health_service();
        let response = health.check(request).await.map_err(|s| s.message().to_owned())?;
        match response.into_inner().status {
            1 => Ok(()), // SERVING
            other => Err(format!("health status {other}")),
        }
    }
}

/// Runs a call to Temporal in the current request's trace: the SDK's OpenTelemetry plugin puts
/// OpenTelemetry's current context into the workflow's headers, and a `tracing` span does not
/// make itself that context. Without trace export, the context is empty and nothing changes.
fn in_this_trace<F: Future>(call: F) -> impl Future<Output = F::Output> {
    call.with_context(tracing::Span::current().context())
}

fn rpc_options() -> RpcOptions {
    RpcOptions::builder().timeout(RPC_TIMEOUT).build()
}

/// Temporal (or the worker it waited for) did not answer in time, or is down.
fn unavailable(status: &Status) -> ApiError {
    match status.code() {
        Code::DeadlineExceeded | Code::Cancelled => ApiError::Unavailable(format!(
            "No worker answered within {} s; the order is safe and will be processed when one is running.",
            RPC_TIMEOUT.as_secs()
        )),
        Code::Unavailable => {
            ApiError::Unavailable("Temporal is not reachable right now; try again shortly.".into())
        }
        _ => ApiError::Internal(anyhow::anyhow!(
            "Temporal error {:?}: {}",
            status.code(),
            status.message()
        )),
    }
}
