//! The workflow's decisions with the activities mocked: no PostgreSQL, no providers, only the
//! SDK's test environment (a Temporal dev server of its own on a free port, in memory, started
//! from the `temporal` CLI that `make test` installs; TEMPORAL_CLI names it). Each order's
//! customer id picks what its mocked steps answer, so every path of the saga runs side by side
//! on one worker: which steps ran, in which order, with which inputs, and the state the
//! workflow ends with. The end-to-end tests run the same paths against the real activities.

use orderflow_domain::{
    CustomerId, ErrorCode, Money, NewOrder, NotificationKind, OrderEnding, OrderId, OrderLine,
    OrderState, OrderStatus, ProductId, Quantity, Step, StepStatus, TEMPORARY_PROBLEM,
};
use orderflow_workflow::{
    CancelDecision, CloseReport, FailureType, InDatabase, NotificationRequest, OrderEnd,
    OrderInput, OrderWorkflow, PaymentAnswer, PaymentOutcome, PaymentReceipt, PaymentRequest,
    StepReport, activity,
};
use rust_decimal::Decimal;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use temporalio_client::{
    Client, WorkflowExecuteUpdateOptions, WorkflowGetResultOptions, WorkflowSignalOptions,
    WorkflowStartOptions,
};
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use temporalio_sdk::testing::{EphemeralExe, LocalWorkflowEnvironmentOptions, WorkflowEnvironment};
use temporalio_sdk::{ApplicationFailure, Runtime, Worker, WorkerOptions};

const TASK_QUEUE: &str = "decisions";

/// What happened to one order: the activities called, in order, and how it was closed.
#[derive(Debug, Default, Clone)]
struct Calls {
    customer: String,
    steps: Vec<&'static str>,
    closed_as: Option<OrderEnding>,
    notified: Option<NotificationKind>,
}

/// The mocked activities. What each answers depends on the order's customer id (see
/// [`script`]); clones share what they record.
#[derive(Default, Clone)]
struct Scripted {
    orders: Arc<Mutex<HashMap<OrderId, Calls>>>,
}

/// The behaviours the customer ids ask for.
mod script {
    pub const HAPPY: &str = "happy";
    pub const OUT_OF_STOCK: &str = "out-of-stock";
    pub const DECLINED: &str = "declined";
    pub const PROVIDER_BROKEN: &str = "provider-broken";
    pub const CANCELLED_FIRST: &str = "cancelled-first";
    pub const CONFIRMED_AFTER_ALL: &str = "confirmed-after-all";
    pub const UNREACHABLE: &str = "unreachable";
    pub const SLOW_STOCK: &str = "slow-stock";
    /// The provider refuses for good to capture the payment being confirmed.
    pub const CAPTURE_REFUSED: &str = "capture-refused";
    /// The payment needs the customer's confirmation, for at most a minute.
    pub const AWAITING: &str = "awaiting";
    /// The payment needs the customer's confirmation, for at most 1.5 s.
    pub const AWAITING_BRIEFLY: &str = "awaiting-briefly";
}

fn final_failure(kind: &str, message: &str) -> ActivityError {
    ActivityError::application(
        ApplicationFailure::builder(message.to_owned())
            .type_name(kind.to_owned())
            .non_retryable(true)
            .build(),
    )
}

fn done() -> StepReport {
    StepReport { attempt: 1 }
}

impl Scripted {
    /// Records the call and returns the order's customer.
    fn called(&self, order: OrderId, step: &'static str) -> String {
        let mut orders = self.orders.lock().unwrap();
        let calls = orders.entry(order).or_default();
        calls.steps.push(step);
        calls.customer.clone()
    }

    fn calls(&self, order: OrderId) -> Calls {
        self.orders.lock().unwrap().get(&order).cloned().unwrap_or_default()
    }
}

// The macro adds a constant per activity, which only a worker's registration reads.
#[allow(dead_code)]
mod implementations {
    use super::*;

    #[activities]
    impl Scripted {
        #[activity(definition = activity::CreateOrder)]
        async fn create_order(
            self: Arc<Self>,
            _ctx: ActivityContext,
            order: InDatabase<NewOrder>,
        ) -> Result<StepReport, ActivityError> {
            let order = order.input;
            let customer = order.customer_id.as_str().to_owned();
            self.orders.lock().unwrap().entry(order.order_id).or_default().customer = customer;
            self.called(order.order_id, "create_order");
            Ok(done())
        }

        #[activity(definition = activity::ReserveStock)]
        async fn reserve_stock(
            self: Arc<Self>,
            _ctx: ActivityContext,
            order: InDatabase<OrderId>,
        ) -> Result<StepReport, ActivityError> {
            match self.called(order.input, "reserve_stock").as_str() {
                script::OUT_OF_STOCK => Err(final_failure(
                    ErrorCode::InsufficientStock.as_str(),
                    "not enough stock of prod-001: 2 requested, 1 available",
                )),
                // A stock check that lasts until the order's cancellation has been recorded
                // (at most 9 s, under the step timeout): the cancel lands during the step
                // whatever the machine's speed.
                script::SLOW_STOCK => {
                    for _ in 0..90 {
                        if self.calls(order.input).steps.contains(&"request_cancellation") {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Ok(done())
                }
                _ => Ok(done()),
            }
        }

        #[activity(definition = activity::ProcessPayment)]
        async fn process_payment(
            self: Arc<Self>,
            _ctx: ActivityContext,
            request: InDatabase<PaymentRequest>,
        ) -> Result<PaymentReceipt, ActivityError> {
            match self.called(request.input.order_id, "process_payment").as_str() {
                script::DECLINED => Err(final_failure(
                    ErrorCode::PaymentDeclined.as_str(),
                    "payment declined: card expired",
                )),
                script::PROVIDER_BROKEN => {
                    Err(final_failure("provider_exploded", "HTTP 500 from PSP"))
                }
                script::AWAITING => Ok(awaiting(Duration::from_secs(60))),
                script::AWAITING_BRIEFLY => Ok(awaiting(Duration::from_millis(1500))),
                _ => Ok(PaymentReceipt {
                    payment_id: "pay_1".into(),
                    attempt: 1,
                    awaiting_customer_until: None,
                }),
            }
        }

        #[activity(definition = activity::ConfirmOrder)]
        async fn confirm_order(
            self: Arc<Self>,
            _ctx: ActivityContext,
            order: InDatabase<OrderId>,
        ) -> Result<StepReport, ActivityError> {
            match self.called(order.input, "confirm_order").as_str() {
                script::CANCELLED_FIRST => Err(final_failure(
                    FailureType::OrderCancelled.as_str(),
                    "the customer's cancellation was recorded first",
                )),
                script::CONFIRMED_AFTER_ALL => Err(final_failure("lost_reply", "connection reset")),
                script::CAPTURE_REFUSED => Err(final_failure(
                    ErrorCode::PaymentFailed.as_str(),
                    "the payment provider refused the capture: the authorization expired",
                )),
                _ => Ok(done()),
            }
        }

        #[activity(definition = activity::NotifyCustomer)]
        async fn notify_customer(
            self: Arc<Self>,
            _ctx: ActivityContext,
            request: InDatabase<NotificationRequest>,
        ) -> Result<StepReport, ActivityError> {
            let request = request.input;
            let customer = self.called(request.order_id, "notify_customer");
            self.orders.lock().unwrap().get_mut(&request.order_id).unwrap().notified =
                Some(request.kind);
            match customer.as_str() {
                script::UNREACHABLE => Err(final_failure("mailbox_full", "mailbox full")),
                _ => Ok(done()),
            }
        }

        #[activity(definition = activity::CloseOrder)]
        async fn close_order(
            self: Arc<Self>,
            _ctx: ActivityContext,
            request: InDatabase<OrderEnd>,
        ) -> Result<CloseReport, ActivityError> {
            let end = request.input;
            let customer = self.called(end.order_id, "close_order");
            self.orders.lock().unwrap().get_mut(&end.order_id).unwrap().closed_as =
                Some(end.ending.clone());
            // The database's answer: a confirmation the workflow lost track of wins.
            let status = match customer.as_str() {
                script::CONFIRMED_AFTER_ALL => OrderStatus::Completed,
                _ => end.ending.status(),
            };
            Ok(CloseReport { status, attempt: 1 })
        }

        #[activity(definition = activity::RequestCancellation)]
        async fn request_cancellation(
            self: Arc<Self>,
            _ctx: ActivityContext,
            order: InDatabase<OrderId>,
        ) -> Result<CancelDecision, ActivityError> {
            self.called(order.input, "request_cancellation");
            Ok(CancelDecision::Accepted)
        }

        #[activity(definition = activity::RefundPayment)]
        async fn refund_payment(
            self: Arc<Self>,
            _ctx: ActivityContext,
            order: InDatabase<OrderId>,
        ) -> Result<StepReport, ActivityError> {
            self.called(order.input, "refund_payment");
            Ok(done())
        }

        #[activity(definition = activity::ReleaseStock)]
        async fn release_stock(
            self: Arc<Self>,
            _ctx: ActivityContext,
            request: InDatabase<OrderEnd>,
        ) -> Result<StepReport, ActivityError> {
            self.called(request.input.order_id, "release_stock");
            Ok(done())
        }
    }
}

fn awaiting(for_at_most: Duration) -> PaymentReceipt {
    PaymentReceipt {
        payment_id: "pay_1".into(),
        attempt: 1,
        awaiting_customer_until: Some(chrono::Utc::now() + for_at_most),
    }
}

fn order_of(customer: &str) -> NewOrder {
    let line = OrderLine {
        product_id: ProductId::parse("prod-001").unwrap(),
        name: "iPhone 15 Pro".into(),
        quantity: Quantity::parse(1).unwrap(),
        unit_price: Money::parse("price", Decimal::new(99999, 2)).unwrap(),
    };
    NewOrder {
        order_id: OrderId::generate(),
        customer_id: CustomerId::parse(customer).unwrap(),
        total: line.total().unwrap(),
        lines: vec![line],
    }
}

/// Runs `scenario` against a fresh dev server with a worker of the real workflow and the
/// scripted activities.
async fn with_worker<F, Fut>(scenario: F)
where
    F: FnOnce(Client, Scripted) -> Fut,
    Fut: Future<Output = ()>,
{
    let cli = std::env::var("TEMPORAL_CLI").unwrap_or_else(|_| "temporal".into());
    let options = LocalWorkflowEnvironmentOptions::builder()
        .server_executable(EphemeralExe::ExistingPath(cli))
        .build();
    let env = WorkflowEnvironment::start_local(options)
        .await
        .expect("a local dev server (make test installs the temporal CLI; TEMPORAL_CLI names it)");
    let scripted = Scripted::default();
    let runtime = Runtime::from_current_tokio(Default::default()).unwrap();
    let options = WorkerOptions::new(TASK_QUEUE)
        .register_workflow::<OrderWorkflow>()
        .unwrap()
        .register_activities(scripted.clone())
        .build();
    let mut worker = Worker::new(&runtime, env.client().clone(), options).unwrap();
    let stop = worker.shutdown_handle();
    let drive = async {
        scenario(env.client().clone(), scripted).await;
        stop();
    };
    let (ran, ()) = tokio::join!(worker.run(), drive);
    ran.expect("the worker ran");
    env.shutdown().await.expect("the dev server stops");
}

async fn start(client: &Client, order: &NewOrder) {
    // As the service does in tests: a long step holds its workflow task open and is
    // heartbeated at 80% of this timeout, which is when a cancel update can reach the workflow.
    let options = WorkflowStartOptions::new(TASK_QUEUE, order.order_id.workflow_id().to_string())
        .task_timeout(Duration::from_secs(2))
        .build();
    let input = OrderInput { order: order.clone(), database: None };
    client.start_workflow(OrderWorkflow::run, input, options).await.expect("the order starts");
}

async fn result(client: &Client, order: &NewOrder) -> OrderState {
    let handle =
        client.get_workflow_handle::<OrderWorkflow>(order.order_id.workflow_id().to_string());
    tokio::time::timeout(
        Duration::from_secs(30),
        handle.get_result(WorkflowGetResultOptions::default()),
    )
    .await
    .expect("the workflow ends within 30 s")
    .expect("the workflow completes (outcomes are results, not workflow failures)")
}

/// Runs the orders of `customers` side by side and returns each one's end state and calls.
async fn run_all(
    client: &Client,
    scripted: &Scripted,
    customers: &[&'static str],
) -> HashMap<&'static str, (OrderState, Calls)> {
    let orders: Vec<(&str, NewOrder)> = customers.iter().map(|c| (*c, order_of(c))).collect();
    for (_, order) in &orders {
        start(client, order).await;
    }
    let mut ended = HashMap::new();
    for (customer, order) in &orders {
        let state = result(client, order).await;
        ended.insert(*customer, (state, scripted.calls(order.order_id)));
    }
    ended
}

fn steps_of(state: &OrderState) -> Vec<(Step, StepStatus)> {
    state.step_history.iter().map(|r| (r.step, r.status)).collect()
}

#[tokio::test]
async fn every_outcome_of_the_saga_follows_from_what_its_steps_answer() {
    use script::*;
    with_worker(|client, scripted| async move {
        let all = [
            HAPPY,
            OUT_OF_STOCK,
            DECLINED,
            PROVIDER_BROKEN,
            CANCELLED_FIRST,
            CONFIRMED_AFTER_ALL,
            UNREACHABLE,
            CAPTURE_REFUSED,
        ];
        let ended = run_all(&client, &scripted, &all).await;
        let compensations = ["close_order", "refund_payment", "release_stock"];

        // Everything succeeds: completed, in the Go service's order of steps, customer told.
        let (state, calls) = &ended[HAPPY];
        assert_eq!(state.status, OrderStatus::Completed);
        assert_eq!(
            calls.steps,
            [
                "create_order",
                "reserve_stock",
                "process_payment",
                "confirm_order",
                "notify_customer"
            ]
        );
        assert_eq!(state.payment_id.as_deref(), Some("pay_1"));
        assert!(state.customer_notified && state.completed_at.is_some());
        assert_eq!(calls.notified, Some(NotificationKind::OrderConfirmed));
        assert!(steps_of(state).iter().all(|(_, s)| *s == StepStatus::Completed));

        // No stock: failed with the shortage for the customer; nothing charged; rolled back.
        let (state, calls) = &ended[OUT_OF_STOCK];
        assert_eq!(
            (state.status, state.error_code),
            (OrderStatus::Failed, Some(ErrorCode::InsufficientStock))
        );
        assert!(state.error_message.as_deref().unwrap().contains("not enough stock"));
        assert!(!calls.steps.contains(&"process_payment"), "{:?}", calls.steps);
        // Every compensation, whatever the run reached: a step a lost worker ran is undone too.
        assert_eq!(calls.steps[2..5], compensations, "compensations newest first");
        assert!(matches!(
            calls.closed_as,
            Some(OrderEnding::Failed { code: ErrorCode::InsufficientStock, .. })
        ));
        assert_eq!(calls.notified, Some(NotificationKind::OrderFailed));

        // Declined: the provider's reason is the customer's; stock released.
        let (state, calls) = &ended[DECLINED];
        assert_eq!(state.error_code, Some(ErrorCode::PaymentDeclined));
        assert_eq!(state.error_message.as_deref(), Some("payment declined: card expired"));
        assert_eq!(calls.steps[3..6], compensations);
        assert!(!calls.steps.contains(&"confirm_order"));

        // A technical payment failure: `payment_failed`, a generic message, no PSP details.
        let (state, _) = &ended[PROVIDER_BROKEN];
        assert_eq!(state.error_code, Some(ErrorCode::PaymentFailed));
        assert_eq!(
            state.error_message.as_deref(),
            Some(ErrorCode::PaymentFailed.customer_message())
        );
        let failed_step = state.step_history.iter().find(|r| r.step == Step::ProcessPayment);
        assert_eq!(failed_step.unwrap().error.as_deref(), Some(TEMPORARY_PROBLEM));

        // Confirmation lost the race to a cancellation: cancelled, not failed; rolled back.
        let (state, calls) = &ended[CANCELLED_FIRST];
        assert_eq!((state.status, state.error_code), (OrderStatus::Cancelled, None));
        assert_eq!(calls.closed_as, Some(OrderEnding::Cancelled));
        assert_eq!(calls.steps[4..7], compensations);
        assert_eq!(calls.notified, Some(NotificationKind::OrderCancelled));

        // Confirmation failed here but the database says it was confirmed: completed, and
        // nothing is undone.
        let (state, calls) = &ended[CONFIRMED_AFTER_ALL];
        assert_eq!(state.status, OrderStatus::Completed);
        assert!(!calls.steps.contains(&"refund_payment"), "{:?}", calls.steps);
        assert!(!calls.steps.contains(&"release_stock"));
        assert_eq!(calls.notified, Some(NotificationKind::OrderConfirmed));

        // The provider refused to capture a payment being confirmed: the order cannot complete
        // without its money. It fails `payment_failed` and is rolled back like any failure:
        // closed failed, the authorization voided, the stock released, the customer told.
        let (state, calls) = &ended[CAPTURE_REFUSED];
        assert_eq!(
            (state.status, state.error_code),
            (OrderStatus::Failed, Some(ErrorCode::PaymentFailed))
        );
        assert_eq!(calls.steps[3], "confirm_order");
        assert_eq!(calls.steps[4..7], compensations);
        assert!(matches!(
            calls.closed_as,
            Some(OrderEnding::Failed { code: ErrorCode::PaymentFailed, .. })
        ));
        assert_eq!(calls.notified, Some(NotificationKind::OrderFailed));
        assert!(steps_of(state).contains(&(Step::ConfirmOrder, StepStatus::Failed)));

        // The customer could not be told: the outcome stands, the flag says so.
        let (state, _) = &ended[UNREACHABLE];
        assert_eq!(state.status, OrderStatus::Completed);
        assert!(!state.customer_notified);
    })
    .await;
}

#[tokio::test]
async fn a_cancellation_accepted_during_a_step_stops_the_order_before_the_next() {
    with_worker(|client, scripted| async move {
        let order = order_of(script::SLOW_STOCK);
        start(&client, &order).await;
        let handle =
            client.get_workflow_handle::<OrderWorkflow>(order.order_id.workflow_id().to_string());
        // The stock check runs until the cancellation is recorded; cancel while it runs.
        while !scripted.calls(order.order_id).steps.contains(&"reserve_stock") {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let accepted = handle
            .execute_update(OrderWorkflow::cancel, (), WorkflowExecuteUpdateOptions::default())
            .await
            .expect("the cancellation is accepted while stock is checked");
        assert_eq!(accepted.status, OrderStatus::Validating);

        let state = result(&client, &order).await;
        let calls = scripted.calls(order.order_id);
        assert_eq!(state.status, OrderStatus::Cancelled);
        assert!(state.is_cancelled);
        assert_eq!(
            calls.steps,
            [
                "create_order",
                "reserve_stock",
                "request_cancellation",
                "close_order",
                "refund_payment",
                "release_stock",
                "notify_customer"
            ],
            "no payment after an accepted cancellation; every compensation runs"
        );
    })
    .await;
}

/// Signals the provider's answer to `order`'s workflow, as the webhook endpoint does.
async fn answer(client: &Client, order: &NewOrder, payment_id: &str, outcome: PaymentOutcome) {
    let handle =
        client.get_workflow_handle::<OrderWorkflow>(order.order_id.workflow_id().to_string());
    let event_id = format!("evt_{}", OrderId::generate());
    let answer = PaymentAnswer { event_id, payment_id: payment_id.into(), outcome };
    handle
        .signal(OrderWorkflow::payment_answered, answer, WorkflowSignalOptions::default())
        .await
        .expect("the answer is delivered");
}

/// Waits until the order's workflow waits for the customer.
async fn until_awaiting(scripted: &Scripted, order: &NewOrder) {
    while !scripted.calls(order.order_id).steps.contains(&"process_payment") {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_payment_awaiting_the_customer_ends_by_their_answer_the_deadline_or_a_cancel() {
    with_worker(|client, scripted| async move {
        let confirmed = order_of(script::AWAITING);
        let declined = order_of(script::AWAITING);
        let cancelled = order_of(script::AWAITING);
        let timed_out = order_of(script::AWAITING_BRIEFLY);
        for order in [&confirmed, &declined, &cancelled, &timed_out] {
            start(&client, order).await;
            until_awaiting(&scripted, order).await;
        }
        // An answer about another payment (forged, or confused) changes nothing; the first
        // real answer counts, a repeated or contrary one after it does not.
        answer(&client, &timed_out, "pay_forged", PaymentOutcome::Authorized).await;
        answer(&client, &confirmed, "pay_1", PaymentOutcome::Authorized).await;
        let card_refused = PaymentOutcome::Failed { reason: "3-D Secure refused".into() };
        answer(&client, &confirmed, "pay_1", card_refused.clone()).await;
        answer(&client, &declined, "pay_1", card_refused).await;
        let handle = client
            .get_workflow_handle::<OrderWorkflow>(cancelled.order_id.workflow_id().to_string());
        let accepted = handle
            .execute_update(OrderWorkflow::cancel, (), WorkflowExecuteUpdateOptions::default())
            .await
            .expect("a cancellation is accepted while the payment is awaited");
        assert_eq!(accepted.status, OrderStatus::Payment);

        let forward = ["create_order", "reserve_stock", "process_payment"];
        let compensations = ["close_order", "refund_payment", "release_stock", "notify_customer"];
        let awaited = |state: &OrderState| {
            let record = state.step_history.iter().find(|r| r.step == Step::AwaitPayment);
            record.map(|r| r.status).expect("the wait is a step of the history")
        };

        let state = result(&client, &confirmed).await;
        assert_eq!(state.status, OrderStatus::Completed);
        assert_eq!(awaited(&state), StepStatus::Completed);
        // The contrary answer arrives while the workflow task that confirms and completes the
        // order runs; Temporal refuses to complete a workflow with a signal it has not seen,
        // that task fails, and its local activities run again on the retry. They are
        // idempotent (confirmation and capture happen once, a message is sent once), which is
        // what makes that harmless: the order still completes, on the first answer.
        let steps = scripted.calls(confirmed.order_id).steps;
        assert_eq!(steps[..5], [&forward[..], &["confirm_order", "notify_customer"]].concat());
        assert!(steps[5..].iter().all(|s| ["confirm_order", "notify_customer"].contains(s)));

        let state = result(&client, &declined).await;
        assert_eq!(
            (state.status, state.error_code),
            (OrderStatus::Failed, Some(ErrorCode::PaymentDeclined))
        );
        assert_eq!(state.error_message.as_deref(), Some("payment declined: 3-D Secure refused"));
        assert_eq!(awaited(&state), StepStatus::Failed);
        assert_eq!(
            scripted.calls(declined.order_id).steps,
            [&forward[..], &compensations].concat()
        );

        let state = result(&client, &cancelled).await;
        assert_eq!((state.status, state.error_code), (OrderStatus::Cancelled, None));
        let steps = scripted.calls(cancelled.order_id).steps;
        let expected = [&forward[..], &["request_cancellation"], &compensations].concat();
        assert_eq!(steps, expected, "voided and released at once, not at the deadline");

        let state = result(&client, &timed_out).await;
        assert_eq!(
            (state.status, state.error_code),
            (OrderStatus::Failed, Some(ErrorCode::PaymentTimeout))
        );
        assert!(state.error_message.as_deref().unwrap().contains("not confirmed by"));
        assert_eq!(
            scripted.calls(timed_out.order_id).steps,
            [&forward[..], &compensations].concat()
        );
        let calls = scripted.calls(timed_out.order_id);
        assert!(matches!(
            calls.closed_as,
            Some(OrderEnding::Failed { code: ErrorCode::PaymentTimeout, .. })
        ));
    })
    .await;
}
