//! The steps' activities in isolation: each step run by the SDK's `ActivityEnvironment` (no Temporal
//! server) against a fresh PostgreSQL database and the simulated providers, checking what the
//! workflow relies on: which failures are final and typed, which are retried, and what the
//! database holds afterwards.

use orderflow_domain::{
    CustomerId, DatabaseId, Money, NewOrder, OrderEnding, OrderId, OrderLine, OrderStatus,
    PaymentStatus, ProductId, Quantity,
};
use orderflow_providers::{
    Authorization, PaymentGateway, ProviderError, SimulatedNotifier, SimulatedPaymentGateway,
};
use orderflow_store::testing::{TestDatabase, fresh_database, server_from_env};
use orderflow_workflow::steps::cancel::Cancel;
use orderflow_workflow::steps::close_order::CloseOrder;
use orderflow_workflow::steps::confirm_order::ConfirmOrder;
use orderflow_workflow::steps::create_order::CreateOrder;
use orderflow_workflow::steps::process_payment::ProcessPayment;
use orderflow_workflow::steps::reserve_stock::ReserveStock;
use orderflow_workflow::{
    CancelDecision, FailureType, InDatabase, OrderEnd, PAYMENT_ATTEMPTS, PaymentRequest, StepDeps,
    StuckSteps,
};
use rust_decimal::Decimal;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use temporalio_sdk::activities::ActivityError;
use temporalio_sdk::testing::{
    ActivityEnvironment, ActivityEnvironmentError, TestActivityInfoOptions,
};

/// Totals above this are declined by the simulated provider.
const DECLINE_ABOVE: i64 = 100;

struct Steps {
    db: TestDatabase,
    database: DatabaseId,
    provider: Arc<Counted>,
}

/// The simulated provider, counting the calls that reach it.
struct Counted {
    inner: SimulatedPaymentGateway,
    authorizations: AtomicU32,
    captures: AtomicU32,
    voids: AtomicU32,
    /// Refuse every capture for good (an authorization that expired at the provider).
    refuse_captures: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl PaymentGateway for Counted {
    async fn authorize(&self, key: &str, amount: Money) -> Result<Authorization, ProviderError> {
        self.authorizations.fetch_add(1, Ordering::SeqCst);
        self.inner.authorize(key, amount).await
    }

    async fn capture(&self, id: &str) -> Result<(), ProviderError> {
        self.captures.fetch_add(1, Ordering::SeqCst);
        if self.refuse_captures.load(Ordering::SeqCst) {
            return Err(ProviderError::Refused("the authorization expired".into()));
        }
        self.inner.capture(id).await
    }

    async fn void(&self, id: &str) -> Result<(), ProviderError> {
        self.voids.fetch_add(1, Ordering::SeqCst);
        self.inner.void(id).await
    }

    async fn refund(&self, id: &str, key: &str) -> Result<String, ProviderError> {
        self.inner.refund(id, key).await
    }

    async fn payment_of(&self, order_id: &str) -> Result<Option<String>, ProviderError> {
        self.inner.payment_of(order_id).await
    }

    async fn lookup(
        &self,
        id: &str,
    ) -> Result<orderflow_providers::payment_provider::IntentView, ProviderError> {
        self.inner.lookup(id).await
    }
}

impl Steps {
    fn authorizations(&self) -> u32 {
        self.provider.authorizations.load(Ordering::SeqCst)
    }

    fn voids(&self) -> u32 {
        self.provider.voids.load(Ordering::SeqCst)
    }

    fn captures(&self) -> u32 {
        self.provider.captures.load(Ordering::SeqCst)
    }
}

impl Steps {
    async fn new() -> Self {
        let db = fresh_database(&server_from_env()).await;
        let database = db.database_id().await.unwrap();
        Self::with_provider(db, database, 0.0)
    }

    /// With a provider that fails every call.
    async fn provider_down() -> Self {
        let db = fresh_database(&server_from_env()).await;
        let database = db.database_id().await.unwrap();
        Self::with_provider(db, database, 1.0)
    }

    fn with_provider(db: TestDatabase, database: DatabaseId, failure_rate: f64) -> Self {
        let limit = Money::parse("limit", Decimal::from(DECLINE_ABOVE)).unwrap();
        let provider = Arc::new(Counted {
            inner: SimulatedPaymentGateway::new(limit, Duration::ZERO, failure_rate),
            authorizations: AtomicU32::new(0),
            captures: AtomicU32::new(0),
            voids: AtomicU32::new(0),
            refuse_captures: Default::default(),
        });
        Self { db, database, provider }
    }

    /// An environment running this database's steps on attempt `attempt`.
    fn env(&self, attempt: u32) -> ActivityEnvironment {
        let deps = Arc::new(StepDeps {
            store: self.db.store.clone(),
            database: self.database,
            payments: self.provider.clone(),
            notifier: Arc::new(SimulatedNotifier::new(Duration::ZERO, 0.0)),
            inventory_delay: Duration::ZERO,
            payment_hold: Duration::from_secs(60),
            stuck: StuckSteps::new(self.db.store.clone(), 100),
            steps_run: Default::default(),
        });
        ActivityEnvironment::builder_with_default()
            .info(TestActivityInfoOptions::builder().attempt(attempt).build())
            .register_activities(CreateOrder(deps.clone()))
            .register_activities(ReserveStock(deps.clone()))
            .register_activities(ProcessPayment(deps.clone()))
            .register_activities(ConfirmOrder(deps.clone()))
            .register_activities(CloseOrder(deps.clone()))
            .register_activities(Cancel(deps))
            .build()
    }

    fn mine<T>(&self, input: T) -> InDatabase<T> {
        InDatabase { database: Some(self.database), input }
    }

    /// An order of `units` of prod-001 at 10.00, written and holding its stock.
    async fn reserved_order(&self, units: i64) -> NewOrder {
        let order = order(units);
        let env = self.env(1);
        env.run(CreateOrder::create_order, self.mine(order.clone())).await.unwrap();
        env.run(ReserveStock::reserve_stock, self.mine(order.order_id)).await.unwrap();
        order
    }
}

fn order(units: i64) -> NewOrder {
    let line = OrderLine {
        product_id: ProductId::parse("prod-001").unwrap(),
        name: "iPhone 15 Pro".into(),
        quantity: Quantity::parse(units).unwrap(),
        unit_price: Money::parse("price", Decimal::new(1000, 2)).unwrap(),
    };
    NewOrder {
        order_id: OrderId::generate(),
        customer_id: CustomerId::parse("customer-1").unwrap(),
        total: line.total().unwrap(),
        lines: vec![line],
    }
}

/// The failure's type and whether it is final.
fn failure<T: std::fmt::Debug>(result: Result<T, ActivityEnvironmentError>) -> (String, bool) {
    match result {
        Err(ActivityEnvironmentError::Activity(ActivityError::Application(failure))) => {
            (failure.type_name().unwrap_or_default().to_owned(), failure.is_non_retryable())
        }
        other => panic!("expected an application failure, got {other:?}"),
    }
}

#[tokio::test]
async fn a_step_of_another_databases_order_is_refused_and_touches_nothing() {
    let steps = Steps::new().await;
    let order = order(1);
    let foreign = InDatabase {
        database: Some(DatabaseId::from_uuid(uuid::Uuid::new_v4())),
        input: order.clone(),
    };
    let refused = steps.env(1).run(CreateOrder::create_order, foreign).await;
    assert_eq!(failure(refused), (FailureType::ForeignDatabase.as_str().to_owned(), true));
    assert!(steps.db.order(order.order_id).await.unwrap().is_none(), "nothing was written");
}

#[tokio::test]
async fn a_decline_is_final_and_typed_and_a_retry_does_not_ask_again() {
    let steps = Steps::new().await;
    // 11 units at 10.00 is above the provider's limit.
    let order = steps.reserved_order(11).await;
    let payment = PaymentRequest { order_id: order.order_id, amount: order.total };
    for attempt in [1, 2] {
        let declined = steps
            .env(attempt)
            .run(ProcessPayment::process_payment, steps.mine(payment.clone()))
            .await;
        assert_eq!(failure(declined), ("payment_declined".to_owned(), true), "attempt {attempt}");
    }
    let recorded = steps.db.payment(order.order_id).await.unwrap().unwrap();
    assert_eq!(recorded.status, PaymentStatus::Failed);
    assert!(recorded.decline_reason.unwrap().contains("exceeds the limit"));
    assert_eq!(steps.authorizations(), 1, "the retry answered from the recorded decline");
}

#[tokio::test]
async fn an_unavailable_provider_is_retried_until_the_last_attempt_fails_the_payment() {
    let steps = Steps::provider_down().await;
    let order = steps.reserved_order(1).await;
    let payment = PaymentRequest { order_id: order.order_id, amount: order.total };
    let early =
        steps.env(1).run(ProcessPayment::process_payment, steps.mine(payment.clone())).await;
    assert!(!failure(early).1, "a provider outage is retried");
    let last =
        steps.env(PAYMENT_ATTEMPTS).run(ProcessPayment::process_payment, steps.mine(payment)).await;
    assert_eq!(failure(last), ("payment_failed".to_owned(), true));
    assert!(steps.db.payment(order.order_id).await.unwrap().is_none(), "nothing was authorized");
}

#[tokio::test]
async fn a_confirmation_after_a_recorded_cancellation_is_refused_as_cancelled() {
    let steps = Steps::new().await;
    let order = steps.reserved_order(1).await;
    let env = steps.env(1);
    let decision = env.run(Cancel::request_cancellation, steps.mine(order.order_id)).await.unwrap();
    assert_eq!(decision, CancelDecision::Accepted);
    let refused = env.run(ConfirmOrder::confirm_order, steps.mine(order.order_id)).await;
    assert_eq!(failure(refused), (FailureType::OrderCancelled.as_str().to_owned(), true));
    let row = steps.db.order(order.order_id).await.unwrap().unwrap();
    assert_ne!(row.status, OrderStatus::Completed);
}

#[tokio::test]
async fn an_authorization_for_an_order_closed_meanwhile_is_voided() {
    let steps = Steps::new().await;
    let order = steps.reserved_order(1).await;
    let env = steps.env(1);
    let end = OrderEnd { order_id: order.order_id, ending: OrderEnding::Cancelled };
    let closed = env.run(CloseOrder::close_order, steps.mine(end)).await.unwrap();
    assert_eq!(closed.status, OrderStatus::Cancelled);
    let payment = PaymentRequest { order_id: order.order_id, amount: order.total };
    let late = env.run(ProcessPayment::process_payment, steps.mine(payment)).await;
    assert_eq!(failure(late), (FailureType::OrderClosed.as_str().to_owned(), true));
    assert!(steps.db.payment(order.order_id).await.unwrap().is_none(), "nothing recorded");
    assert_eq!((steps.authorizations(), steps.voids()), (1, 1), "authorized, then voided");
}

#[tokio::test]
async fn confirming_captures_once_and_a_hold_expiry_is_recorded() {
    let steps = Steps::new().await;
    let order = steps.reserved_order(1).await;
    let row = steps.db.order(order.order_id).await.unwrap().unwrap();
    let hold = row.hold_expires_at.expect("the reservation holds stock until an expiry");
    let left = hold - row.created_at;
    assert!(left > chrono::Duration::seconds(55) && left < chrono::Duration::seconds(65), "{left}");
    let env = steps.env(1);
    let payment = PaymentRequest { order_id: order.order_id, amount: order.total };
    let receipt = env.run(ProcessPayment::process_payment, steps.mine(payment)).await.unwrap();
    assert_eq!(receipt.awaiting_customer_until, None, "authorized at once");
    assert_eq!(
        steps.db.payment(order.order_id).await.unwrap().unwrap().status,
        PaymentStatus::Authorized
    );
    for _ in 0..2 {
        env.run(ConfirmOrder::confirm_order, steps.mine(order.order_id)).await.unwrap();
    }
    let payment = steps.db.payment(order.order_id).await.unwrap().unwrap();
    assert_eq!((payment.status.as_str(), payment.captured), ("captured", order.total.amount()));
    assert_eq!(steps.captures(), 1, "a repeated confirmation does not capture again");
    // A roll back after all (a bug, or a manual edit) refunds what was captured.
    env.run(ProcessPayment::refund_payment, steps.mine(order.order_id)).await.unwrap();
    let payment = steps.db.payment(order.order_id).await.unwrap().unwrap();
    assert_eq!((payment.status.as_str(), payment.refunded), ("refunded", order.total.amount()));
}

/// Confirmation takes the money before the order completes: a capture refused for good fails the
/// step (`payment_failed`, final) and leaves the order not completed, past its point of no
/// return (a cancellation is refused), for the roll back to settle.
#[tokio::test]
async fn a_capture_refused_for_good_fails_confirmation_before_the_order_completes() {
    let steps = Steps::new().await;
    let order = steps.reserved_order(1).await;
    let payment = PaymentRequest { order_id: order.order_id, amount: order.total };
    steps.env(1).run(ProcessPayment::process_payment, steps.mine(payment)).await.unwrap();
    steps.provider.refuse_captures.store(true, Ordering::SeqCst);
    let confirmed = steps.env(1).run(ConfirmOrder::confirm_order, steps.mine(order.order_id)).await;
    assert_eq!(failure(confirmed), ("payment_failed".to_owned(), true));
    let row = steps.db.order(order.order_id).await.unwrap().unwrap();
    assert_ne!(row.status.as_str(), "completed", "no completion without the money");
    let cancel = steps.env(1).run(Cancel::request_cancellation, steps.mine(order.order_id)).await;
    assert_eq!(cancel.unwrap(), orderflow_workflow::CancelDecision::Confirming);
    assert_eq!(steps.db.product("prod-001").await.unwrap().unwrap().sold, 0, "nothing sold");
}
