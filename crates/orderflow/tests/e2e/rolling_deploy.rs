//! Releasing a changed order workflow while orders are in flight (Worker Versioning,
//! docs/operations.md, "Releasing a new version"): v1 is this release's workflow; v2 is a real change to it, an
//! extra durable step, so a v1 order replayed on v2 would fail with a nondeterminism error.
//! Orders are pinned to the build that started them: v1's finish on v1's workers, new ones
//! run v2, and v1's workers stop once the server counts none of its orders open.

use crate::support::{TestApp, quick_heartbeats, readme_order, replay_history, test_http};
use orderflow::config::SimulationConfig;
use orderflow::this_release;
use orderflow_domain::{NewOrder, OrderState, Step, WorkflowId};
use orderflow_testbed::release::{name, open_orders, promote};
use orderflow_workflow::{InDatabase, NotificationRequest, OrderInput, PaymentRequest, activity};
use std::time::{Duration, SystemTime};
use temporalio_client::tonic::Request;
use temporalio_client::{WorkflowFetchHistoryOptions, WorkflowHistory};
use temporalio_common::protos::temporal::api::common::v1::WorkflowExecution;
use temporalio_common::protos::temporal::api::deployment::v1::WorkerDeploymentVersion as Version;
use temporalio_common::protos::temporal::api::workflowservice::v1::{
    CountWorkflowExecutionsRequest, DescribeWorkerDeploymentVersionRequest,
    DescribeWorkflowExecutionRequest,
};
use temporalio_common::worker::WorkerDeploymentVersion;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::workflow_replayer::{WorkflowReplayer, WorkflowReplayerOptions};
use temporalio_sdk::{
    LocalActivityOptions, WorkerOptions, WorkflowContext, WorkflowContextView, WorkflowResult,
};

/// How long v1's orders spend reserving stock: long enough to still be in flight when v2 is
/// promoted. An order is pinned to v1 when its first workflow task completes, which with
/// `quick_heartbeats` is at the task's first heartbeat, 1.6 s into the step.
const INVENTORY_DELAY: Duration = Duration::from_millis(8_000);

#[tokio::test]
async fn a_changed_workflow_is_released_with_orders_in_flight_and_each_finishes_on_its_version() {
    let simulation = SimulationConfig { inventory_delay: INVENTORY_DELAY, ..Default::default() };
    let app =
        TestApp::spawn_without_worker_configured(simulation, quick_heartbeats(test_http())).await;
    let (v1, v2) = (app.release("v1"), app.release("v2"));

    let v1_workers = app.start_release(&v1, this_release);
    // A versioned worker polls, but until a version is current new orders would wait: not ready.
    wait_for_readiness(&app, 503, "has no current version").await;
    promote(&app.temporal, &v1).await.expect("v1 promoted");
    wait_for_readiness(&app, 200, "").await;
    // v2's workers poll before v1's orders are placed: a version that is not current gets no
    // new orders, and promoting it need not wait for its first poll (which could outlast the
    // old orders' stock check on a busy machine).
    let v2_workers = app.start_release(&v2, with_a_pause_after_reserving);
    wait_until_polled(&app, &v2).await;
    let old = place(&app, 4).await;
    // An order placed on v1 but not yet started by a v1 worker would start on v2 once v2 is
    // current: promote only when every old order is pinned to v1.
    for &id in &old {
        wait_until_pinned(&app, id, "v1").await;
    }
    promote(&app.temporal, &v2).await.expect("v2 promoted");
    for &id in &old {
        let status = app.status(id).await["status"].clone();
        assert_ne!(status, "completed", "{id} finished before v2 was out: the test proves nothing");
    }
    let new = place(&app, 3).await;

    // v1's orders finish on v1; then nothing is pinned to v1 and its workers stop.
    for &id in &old {
        app.wait_for_status(id, "completed").await;
    }
    wait_until_drained(&app, &v1, old.len()).await;
    drop(v1_workers);
    let after_v1_stopped = place(&app, 2).await;
    for &id in new.iter().chain(&after_v1_stopped) {
        app.wait_for_status(id, "completed").await;
    }

    for &id in &old {
        // Readable with v1's workers gone: a finished order's state comes from its history.
        let (code, state) = app.get_json(&format!("/api/orders/state?workflow_id={id}")).await;
        assert_eq!((code, state["status"].as_str()), (200, Some("completed")), "{state}");
        assert_eq!(build_of(&app, id).await, "v1");
        let history = history_of(&app, id).await;
        assert!(!history.contains("TimerStartedEventAttributes"), "{id} ran v2's pause");
        replay_history(history.as_bytes()).await;
        assert!(replays_on_v2(&history).await.is_err(), "v2 is not a real change: {id} replays");
    }
    for &id in new.iter().chain(&after_v1_stopped) {
        assert_eq!(build_of(&app, id).await, "v2");
        let history = history_of(&app, id).await;
        assert!(history.contains("TimerStartedEventAttributes"), "{id} did not run v2's pause");
        assert_eq!(app.outcome(id).await.status.to_string(), "completed");
    }
    // Stock: every order took one of the 50 and nothing is left reserved.
    let orders = (old.len() + new.len() + after_v1_stopped.len()) as i32;
    assert_eq!(app.stock("prod-001").await, (50 - orders, 0, orders));
    drop(v2_workers);
}

/// Waits until `/ready` answers `code` with `says` in its body.
async fn wait_for_readiness(app: &TestApp, code: u16, says: &str) {
    let mut last = (0, String::new());
    for _ in 0..200 {
        last = app.get_text("/ready").await;
        if last.0 == code && last.1.contains(says) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("/ready never answered {code} with {says:?}; last: {last:?}");
}

/// Waits until the server knows `version`, which it learns from the version's first poll.
async fn wait_until_polled(app: &TestApp, version: &WorkerDeploymentVersion) {
    let mut last = String::new();
    for _ in 0..600 {
        let request = DescribeWorkerDeploymentVersionRequest {
            namespace: "default".into(),
            deployment_version: Some(Version {
                deployment_name: version.deployment_name.clone(),
                build_id: version.build_id.clone(),
            }),
            ..Default::default()
        };
        let mut service = app.temporal.connection().workflow_service();
        match service.describe_worker_deployment_version(Request::new(request)).await {
            Ok(_) => return,
            Err(status) => last = status.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{version:?} never polled: {last}");
}

async fn place(app: &TestApp, count: usize) -> Vec<WorkflowId> {
    let mut ids = Vec::new();
    for _ in 0..count {
        ids.push(app.place(&readme_order()).await);
    }
    ids
}

/// Waits until the server's visibility counts no open order on `version` and all `orders` on
/// it (it lags a little behind the orders' completion): the drain check an operator runs, and
/// proof that it counts this version's orders rather than nothing.
async fn wait_until_drained(app: &TestApp, version: &WorkerDeploymentVersion, orders: usize) {
    let mut last = (u64::MAX, 0);
    for _ in 0..200 {
        let open = open_orders(&app.temporal, version).await.expect("count the open orders");
        let all =
            count(app, &format!("TemporalWorkerDeploymentVersion = '{}'", name(version))).await;
        if open == 0 && all == orders as u64 {
            return;
        }
        last = (open, all);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{version:?}: (open, all) orders {last:?}, expected (0, {orders})");
}

async fn count(app: &TestApp, query: &str) -> u64 {
    let request =
        CountWorkflowExecutionsRequest { namespace: "default".into(), query: query.into() };
    let mut service = app.temporal.connection().workflow_service();
    let response = service.count_workflow_executions(Request::new(request)).await.unwrap();
    u64::try_from(response.into_inner().count).unwrap_or(0)
}

/// Waits until the server records `id` as pinned to build `build`.
async fn wait_until_pinned(app: &TestApp, id: WorkflowId, build: &str) {
    let mut last = None;
    for _ in 0..600 {
        last = pinned_build(app, id).await;
        if last.as_deref() == Some(build) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{id} was not pinned to {build} within 30 s (last: {last:?})");
}

/// The build id the order's workflow is pinned to, as the server records it.
async fn build_of(app: &TestApp, id: WorkflowId) -> String {
    pinned_build(app, id).await.expect("pinned to a version")
}

/// The build id the order's workflow is pinned to, if it is yet.
async fn pinned_build(app: &TestApp, id: WorkflowId) -> Option<String> {
    let request = DescribeWorkflowExecutionRequest {
        namespace: "default".into(),
        execution: Some(WorkflowExecution { workflow_id: id.to_string(), run_id: String::new() }),
    };
    let mut service = app.temporal.connection().workflow_service();
    let response = service.describe_workflow_execution(Request::new(request)).await.unwrap();
    let info = response.into_inner().workflow_execution_info.expect("execution info");
    Some(info.versioning_info?.deployment_version?.build_id)
}

async fn history_of(app: &TestApp, id: WorkflowId) -> String {
    let handle = app.temporal.get_workflow_handle::<OrderWithAPause>(id.to_string());
    let json = handle.fetch_history(WorkflowFetchHistoryOptions::default()).to_json().await;
    String::from_utf8(json.expect("the history")).expect("JSON")
}

async fn replays_on_v2(history: &str) -> Result<(), String> {
    let history = WorkflowHistory::from_json(history.as_bytes()).expect("a history export");
    let options = WorkflowReplayerOptions::new()
        .register_workflow::<OrderWithAPause>()
        .expect("register v2")
        .build();
    let replayer = WorkflowReplayer::new(options).expect("a replayer");
    replayer.replay_workflow(history).await.map_err(|e| e.to_string())
}

fn with_a_pause_after_reserving(options: &mut WorkerOptions) -> anyhow::Result<()> {
    options.register_workflow::<OrderWithAPause>()?;
    Ok(())
}

/// v2: the order saga (its happy path: this test's orders all complete) with a durable pause
/// between reserving the stock and taking the payment, under the same workflow type.
#[workflow]
pub struct OrderWithAPause {
    input: OrderInput,
    state: OrderState,
}

#[workflow_methods]
impl OrderWithAPause {
    #[init]
    pub fn new(ctx: &WorkflowContextView, input: OrderInput) -> Self {
        let state = OrderState::new(&input.order, clock(ctx.start_time()));
        Self { input, state }
    }

    #[run(name = "OrderWorkflow")]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<OrderState> {
        let (order, database): (NewOrder, _) =
            ctx.state(|w| (w.input.order.clone(), w.input.database));
        let id = order.order_id;
        let begin = |ctx: &WorkflowContext<Self>, s| {
            let now = clock(ctx.workflow_time());
            ctx.state_mut(|w| {
                if !w.state.step_history.is_empty() {
                    w.state.end_step(now, 1, None);
                }
                w.state.begin(s, now);
            });
        };
        begin(ctx, Step::CreateOrder);
        ctx.execute_local_activity(
            activity::CreateOrder,
            InDatabase { database, input: order.clone() },
            local(),
        )
        .await?;
        begin(ctx, Step::ReserveStock);
        ctx.execute_local_activity(
            activity::ReserveStock,
            InDatabase { database, input: id },
            local(),
        )
        .await?;
        ctx.timer(Duration::from_millis(100)).await;
        begin(ctx, Step::ProcessPayment);
        let payment = PaymentRequest { order_id: id, amount: order.total };
        ctx.execute_local_activity(
            activity::ProcessPayment,
            InDatabase { database, input: payment },
            local(),
        )
        .await?;
        begin(ctx, Step::ConfirmOrder);
        ctx.execute_local_activity(
            activity::ConfirmOrder,
            InDatabase { database, input: id },
            local(),
        )
        .await?;
        let now = clock(ctx.workflow_time());
        ctx.state_mut(|w| {
            w.state.end_step(now, 1, None);
            w.state.complete(now);
        });
        let notification = ctx.state(|w| NotificationRequest {
            order_id: id,
            customer_id: w.input.order.customer_id.clone(),
            kind: w.state.notification(),
            message: w.state.customer_message(),
        });
        let notified = ctx
            .execute_local_activity(
                activity::NotifyCustomer,
                InDatabase { database, input: notification },
                local(),
            )
            .await
            .is_ok();
        ctx.state_mut(|w| w.state.customer_notified = notified);
        Ok(ctx.state(|w| w.state.clone()))
    }

    #[query(name = "state")]
    pub fn state(&self, _ctx: &WorkflowContextView) -> OrderState {
        self.state.clone()
    }
}

fn local() -> LocalActivityOptions {
    LocalActivityOptions::builder().start_to_close_timeout(Duration::from_secs(10)).build()
}

fn clock(time: Option<SystemTime>) -> chrono::DateTime<chrono::Utc> {
    time.map(chrono::DateTime::from).unwrap_or(chrono::DateTime::UNIX_EPOCH)
}
