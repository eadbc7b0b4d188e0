//! The saga's activities: each one a small, idempotent unit of I/O over PostgreSQL, the payment
//! gateway or the notifier. Temporal may run any of them more than once (a retry after a
//! timeout, a worker killed mid-step), so each is written to have the effect of running once.
//!
//! A step fails either finally ([`StepError::Final`]: a business outcome, decided, not retried)
//! or for now ([`StepError::Retry`]: anything else, with its context chain, retried with
//! backoff). Only the second kind is logged here, with the order's ids, and watched for steps
//! that keep failing ([`StuckSteps`]).

mod stuck;

pub use stuck::StuckSteps;

use anyhow::Context;
use orderflow_domain::{DatabaseId, ErrorCode, Money, NewOrder, OrderId, Step};
use orderflow_providers::{AuthorizationOutcome, Notifier, PaymentGateway, ProviderError};
use orderflow_store::{AuthorizationStatus, CancelOutcome, Confirmation, Store};
use orderflow_workflow::{
    CancelDecision, CloseReport, FailureType, InDatabase, NotificationRequest, OrderEnd,
    PAYMENT_ATTEMPTS, PaymentReceipt, PaymentRequest, StepReport, activity,
};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use temporalio_macros::activities;
use temporalio_sdk::ApplicationFailure;
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use tracing::Instrument;

/// Exports, at 0, the counters of events that may never happen in a process's life but that an
/// alert watches: a series that appears only after its first event could not tell "none yet"
/// from "not exported", and an `increase()` over it misses the first.
pub fn prime_metrics() {
    metrics::counter!("orderflow_capture_refusals_total").increment(0);
}

/// The name the cancellation activity is known by in logs and metrics (it is not a step of
/// the order's history; its activity type is the same word).
const CANCELLATION: &str = "request_cancellation";

/// The activity implementations and what they need. Register with
/// `WorkerOptions::register_activities(OrderSteps { .. })`.
pub struct OrderSteps {
    pub store: Store,
    /// The identity of `store`'s database: steps of orders of another database are refused.
    pub database: DatabaseId,
    pub payments: Arc<dyn PaymentGateway>,
    pub notifier: Arc<dyn Notifier>,
    /// Simulated time spent checking stock (INVENTORY_DELAY_MS), to watch an order move.
    pub inventory_delay: Duration,
    /// How long stock is held for an order whose payment awaits the customer, which is how
    /// long it waits for them (PAYMENT_CONFIRMATION_TIMEOUT_MS).
    pub payment_hold: Duration,
    pub stuck: StuckSteps,
    /// Steps this worker has run (the worker is replaced after a number of them: see
    /// `orderflow::run_worker`).
    pub steps_run: Arc<std::sync::atomic::AtomicU64>,
}

#[activities]
impl OrderSteps {
    #[activity(definition = activity::CreateOrder)]
    pub async fn create_order(
        self: Arc<Self>,
        ctx: ActivityContext,
        order: InDatabase<NewOrder>,
    ) -> Result<StepReport, ActivityError> {
        let order = self.admit(Step::CreateOrder.as_str(), order)?;
        let trace = current_trace_id();
        self.run(&ctx, Step::CreateOrder.as_str(), order.order_id, async {
            if self
                .store
                .insert_order(&order, trace.as_deref())
                .await
                .context("writing the order")?
            {
                metrics::counter!("orderflow_orders_started_total").increment(1);
            }
            Ok(report(&ctx))
        })
        .await
    }

    #[activity(definition = activity::ReserveStock)]
    pub async fn reserve_stock(
        self: Arc<Self>,
        ctx: ActivityContext,
        order: InDatabase<OrderId>,
    ) -> Result<StepReport, ActivityError> {
        let order = self.admit(Step::ReserveStock.as_str(), order)?;
        self.run(&ctx, Step::ReserveStock.as_str(), order, async {
            // `validating` is worth a write only while there is a stock check to watch; without
            // one, the order goes from `pending` to `payment` in the reservation's transaction.
            if !self.inventory_delay.is_zero() {
                self.store.mark_validating(order).await.context("marking the order validating")?;
                tokio::time::sleep(self.inventory_delay).await;
            }
            let reserved = self.store.reserve_stock(order, Some(self.payment_hold)).await;
            match reserved.context("reserving stock")? {
                Ok(()) => Ok(report(&ctx)),
                Err(shortage) => {
                    metrics::counter!("orderflow_reservation_conflicts_total").increment(1);
                    Err(business(ErrorCode::InsufficientStock, shortage.to_string()))
                }
            }
        })
        .await
    }

    #[activity(definition = activity::ProcessPayment)]
    pub async fn process_payment(
        self: Arc<Self>,
        ctx: ActivityContext,
        request: InDatabase<PaymentRequest>,
    ) -> Result<PaymentReceipt, ActivityError> {
        let request = self.admit(Step::ProcessPayment.as_str(), request)?;
        let order = request.order_id;
        self.run(
            &ctx,
            Step::ProcessPayment.as_str(),
            order,
            self.take_payment(&ctx, order, request.amount),
        )
        .await
    }

    #[activity(definition = activity::ConfirmOrder)]
    pub async fn confirm_order(
        self: Arc<Self>,
        ctx: ActivityContext,
        order: InDatabase<OrderId>,
    ) -> Result<StepReport, ActivityError> {
        let order = self.admit(Step::ConfirmOrder.as_str(), order)?;
        self.run(&ctx, Step::ConfirmOrder.as_str(), order, async {
            // The point of no return first, under the order's row lock (it and a cancellation
            // exclude each other); then the money is taken; only then is the order completed,
            // so that a completed order always has its payment captured (docs/payments.md).
            match self.store.begin_confirmation(order).await.context("beginning confirmation")? {
                Confirmation::Confirmed => {}
                // Completed by an earlier attempt, after its capture; or by a worker older than
                // this rule, which captured after completing: make sure the money was taken.
                Confirmation::AlreadyConfirmed => {
                    self.capture(order).await?;
                    return Ok(report(&ctx));
                }
                Confirmation::Refused => {
                    return Err(StepError::Final(
                        FailureType::OrderCancelled,
                        "the customer's cancellation was recorded first".into(),
                    ));
                }
            }
            self.capture(order).await?;
            match self.store.confirm_order(order).await.context("confirming the order")? {
                Confirmation::Confirmed => {
                    metrics::counter!("orderflow_orders_completed_total").increment(1);
                    Ok(report(&ctx))
                }
                Confirmation::AlreadyConfirmed => Ok(report(&ctx)),
                // Closed by a roll back that overtook this step (a worker that froze): its
                // compensation refunds what was just captured.
                Confirmation::Refused => Err(StepError::Final(
                    FailureType::OrderClosed,
                    "the order was closed while its payment was captured".into(),
                )),
            }
        })
        .await
    }

    #[activity(definition = activity::NotifyCustomer)]
    pub async fn notify_customer(
        self: Arc<Self>,
        ctx: ActivityContext,
        request: InDatabase<NotificationRequest>,
    ) -> Result<StepReport, ActivityError> {
        let request = self.admit(Step::NotifyCustomer.as_str(), request)?;
        let order = request.order_id;
        self.run(&ctx, Step::NotifyCustomer.as_str(), order, async {
            if self
                .store
                .notification_sent(order, request.kind)
                .await
                .context("reading past notifications")?
            {
                return Ok(report(&ctx));
            }
            let dedup_key = format!("{order}:{}", request.kind.as_str());
            let sent = self.notifier.send(&request.customer_id, &dedup_key, &request.message).await;
            let error = sent.as_ref().err().map(ToString::to_string);
            let channel = self.notifier.channel();
            self.store
                .record_notification(
                    order,
                    request.kind,
                    channel,
                    &request.message,
                    error.as_deref(),
                )
                .await
                .context("recording the notification")?;
            sent.context("sending the notification")?;
            Ok(report(&ctx))
        })
        .await
    }

    #[activity(definition = activity::CloseOrder)]
    pub async fn close_order(
        self: Arc<Self>,
        ctx: ActivityContext,
        request: InDatabase<OrderEnd>,
    ) -> Result<CloseReport, ActivityError> {
        let request = self.admit(Step::CloseOrder.as_str(), request)?;
        self.run(&ctx, Step::CloseOrder.as_str(), request.order_id, async {
            let closing = self
                .store
                .close_order(request.order_id, &request.ending)
                .await
                .context("closing the order")?;
            if closing.now {
                match closing.error_code {
                    Some(code) => metrics::counter!(
                        "orderflow_orders_failed_total", "error_code" => code.as_str()
                    )
                    .increment(1),
                    None => metrics::counter!("orderflow_orders_cancelled_total").increment(1),
                }
            }
            Ok(CloseReport { status: closing.status, attempt: attempt(&ctx) })
        })
        .await
    }

    #[activity(definition = activity::RequestCancellation)]
    pub async fn request_cancellation(
        self: Arc<Self>,
        ctx: ActivityContext,
        order: InDatabase<OrderId>,
    ) -> Result<CancelDecision, ActivityError> {
        let order = self.admit(CANCELLATION, order)?;
        self.run(&ctx, CANCELLATION, order, async {
            Ok(
                match self
                    .store
                    .request_cancellation(order)
                    .await
                    .context("recording the cancellation")?
                {
                    CancelOutcome::Recorded => CancelDecision::Accepted,
                    CancelOutcome::Ended(status) => CancelDecision::TooLate(status),
                    CancelOutcome::Confirming => CancelDecision::Confirming,
                },
            )
        })
        .await
    }

    #[activity(definition = activity::RefundPayment)]
    pub async fn refund_payment(
        self: Arc<Self>,
        ctx: ActivityContext,
        order: InDatabase<OrderId>,
    ) -> Result<StepReport, ActivityError> {
        let order = self.admit(Step::RefundPayment.as_str(), order)?;
        self.run(&ctx, Step::RefundPayment.as_str(), order, async {
            self.give_back(order).await?;
            Ok(report(&ctx))
        })
        .await
    }

    #[activity(definition = activity::ReleaseStock)]
    pub async fn release_stock(
        self: Arc<Self>,
        ctx: ActivityContext,
        request: InDatabase<OrderEnd>,
    ) -> Result<StepReport, ActivityError> {
        let request = self.admit(Step::ReleaseStock.as_str(), request)?;
        self.run(&ctx, Step::ReleaseStock.as_str(), request.order_id, async {
            self.store
                .release_stock(request.order_id, &request.ending)
                .await
                .context("releasing stock")?;
            Ok(report(&ctx))
        })
        .await
    }
}

impl OrderSteps {
    /// The step's input, if its order belongs to this worker's database. Otherwise two
    /// deployments share a task queue: the step is refused before anything is touched, loudly,
    /// and the workflow hands the order back to Temporal (see `orderflow_workflow::InDatabase`).
    fn admit<T>(&self, step: &'static str, request: InDatabase<T>) -> Result<T, ActivityError> {
        match request.database {
            Some(database) if database != self.database => {
                metrics::counter!("orderflow_foreign_orders_refused_total", "step" => step)
                    .increment(1);
                tracing::error!(
                    step,
                    order_database = %database,
                    worker_database = %self.database,
                    "refused a step of another database's order: two deployments share this \
                     Temporal task queue; give each its own TEMPORAL_TASK_QUEUE or namespace"
                );
                Err(non_retryable(
                    FailureType::ForeignDatabase,
                    format!(
                        "this worker serves database {}, the order belongs to {database}",
                        self.database
                    ),
                    None,
                ))
            }
            _ => Ok(request.input),
        }
    }

    async fn take_payment(
        &self,
        ctx: &ActivityContext,
        order: OrderId,
        amount: Money,
    ) -> Result<PaymentReceipt, StepError> {
        // A payment that already failed (a retry after a lost reply) is the answer.
        if let Some(payment) = self.store.payment(order).await.context("reading the payment")?
            && matches!(payment.status.as_str(), "failed" | "declined")
        {
            let reason = payment.decline_reason.unwrap_or_else(|| "payment declined".into());
            return Err(business(
                ErrorCode::PaymentDeclined,
                format!("payment declined: {reason}"),
            ));
        }
        // The order id is the provider's idempotency key: an authorization repeated after a
        // crash between "authorized" and "recorded" is the same payment.
        let authorization = match self.payments.authorize(&order.to_string(), amount).await {
            Ok(authorization) => authorization,
            // The provider's own failures are counted: after a few, the order fails (its
            // customer should not wait on a provider that is down). A database failure around
            // the call is not the provider's and is retried until it passes.
            Err(e @ ProviderError::Unavailable(_)) if attempt(ctx) < PAYMENT_ATTEMPTS => {
                return Err(e.into());
            }
            Err(e) => {
                return Err(business(
                    ErrorCode::PaymentFailed,
                    format!("{e} (attempt {})", attempt(ctx)),
                ));
            }
        };
        let payment_id = authorization.payment_id;
        let status = match authorization.outcome {
            AuthorizationOutcome::Authorized => AuthorizationStatus::Authorized,
            AuthorizationOutcome::ActionRequired => AuthorizationStatus::RequiresAction,
            AuthorizationOutcome::Declined(reason) => {
                self.store
                    .record_decline(order, Some(&payment_id), amount, &reason)
                    .await
                    .context("recording the decline")?;
                metrics::counter!("orderflow_payment_declines_total").increment(1);
                return Err(business(
                    ErrorCode::PaymentDeclined,
                    format!("payment declined: {reason}"),
                ));
            }
        };
        let recorded = self.store.record_authorization(order, &payment_id, amount, status).await;
        match recorded.context("recording the authorization")? {
            Some(hold_expires_at) => {
                let awaiting_customer_until = match status {
                    AuthorizationStatus::Authorized => None,
                    // Orders reserved by workers older than holds have no expiry: they wait
                    // as long as a hold made now would.
                    AuthorizationStatus::RequiresAction => Some(
                        hold_expires_at.unwrap_or_else(|| chrono::Utc::now() + self.payment_hold),
                    ),
                };
                Ok(PaymentReceipt { payment_id, attempt: attempt(ctx), awaiting_customer_until })
            }
            None => {
                // The order was closed while this step was under way (a worker that froze or
                // lost its workflow): release the money at once.
                self.payments.void(&payment_id).await.context("voiding a late authorization")?;
                Err(StepError::Final(
                    FailureType::OrderClosed,
                    "the order was closed; the authorization was voided".into(),
                ))
            }
        }
    }

    /// Captures the order's payment, unless it is captured already (a retry, or an order
    /// charged at once by a worker older than authorizations). A capture the provider refuses
    /// for good (the authorization failed, was voided or expired: a 409) fails the order with
    /// `payment_failed`: retrying could never take the money, and the order must not complete
    /// without it.
    async fn capture(&self, order: OrderId) -> Result<(), StepError> {
        let payment = self.store.payment(order).await.context("reading the payment")?;
        let Some(payment) = payment else {
            return Err(StepError::Retry(anyhow::anyhow!("a confirmed order has no payment")));
        };
        if matches!(payment.status.as_str(), "captured" | "refunded") {
            return Ok(());
        }
        let payment_id = payment.payment_id.context("the payment has no provider id")?;
        match self.payments.capture(&payment_id).await {
            Ok(()) => {}
            // Refused: the payment's state forbids it, for good. Anything else (the provider
            // down, or rejecting our request: a rotated key, a bug) may pass later, and an
            // order must not fail for it: retried, and flagged as stuck if it lasts.
            Err(e @ ProviderError::Refused(_)) => {
                metrics::counter!("orderflow_capture_refusals_total").increment(1);
                tracing::error!(%payment_id, error = %e, "the provider refused to capture a confirmed order's payment: the order fails");
                return Err(business(
                    ErrorCode::PaymentFailed,
                    format!("the payment provider refused the capture: {e}"),
                ));
            }
            Err(e) => {
                return Err(anyhow::Error::new(e).context("capturing at the provider").into());
            }
        }
        self.store.record_capture(order).await.context("recording the capture")?;
        Ok(())
    }

    /// Gives the order's money back: voids its authorization, or refunds it if it was
    /// captured. A void the provider refuses means the payment was captured: it is refunded.
    /// Without a record, the provider is asked for the order's payment: a step that died
    /// between authorizing and recording (or whose retries ran out on a lost answer) may have
    /// left an authorization that only the provider knows.
    async fn give_back(&self, order: OrderId) -> Result<(), StepError> {
        let recorded = self.store.payment(order).await.context("reading the payment")?;
        let (payment_id, status) = match recorded {
            Some(payment) => match payment.payment_id {
                Some(id) => (id, payment.status),
                // A decline recorded by a worker older than payment intents.
                None => return Ok(()),
            },
            None => {
                let held = self.payments.payment_of(&order.to_string()).await;
                match held.context("looking the payment up at the provider")? {
                    Some(id) => (id, "unrecorded".to_owned()),
                    None => return Ok(()),
                }
            }
        };
        let captured = match status.as_str() {
            "failed" | "declined" | "voided" | "refunded" => return Ok(()),
            "captured" => true,
            _ => match self.payments.void(&payment_id).await {
                Ok(()) => false,
                Err(ProviderError::Refused(_)) => true,
                Err(ProviderError::Rejected(why)) => {
                    // The provider does not know it: nothing is held there.
                    tracing::warn!(%payment_id, %why, "the provider rejected a void");
                    return Ok(());
                }
                Err(e) => {
                    return Err(anyhow::Error::new(e).context("voiding at the provider").into());
                }
            },
        };
        if captured {
            let refund_id = self
                .payments
                .refund(&payment_id, &format!("refund-{order}"))
                .await
                .context("refunding at the provider")?;
            self.store.record_capture(order).await.context("recording the capture")?;
            self.store.record_refund(order, &refund_id).await.context("recording the refund")?;
        } else {
            self.store.record_void(order).await.context("recording the void")?;
        }
        Ok(())
    }
}

impl OrderSteps {
    /// Runs one step in a span that names the order (so every log line about it carries its
    /// ids), records how long it took, and turns its error into the activity's: final errors
    /// are not retried and report the attempt they ended on; the others are logged and watched
    /// for a step that keeps failing.
    async fn run<T>(
        &self,
        ctx: &ActivityContext,
        name: &'static str,
        order: OrderId,
        work: impl Future<Output = Result<T, StepError>>,
    ) -> Result<T, ActivityError> {
        self.steps_run.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let started = std::time::Instant::now();
        let span = tracing::info_span!("step", step = name, order_id = %order, workflow_id = %order.workflow_id());
        let result = work.instrument(span.clone()).await;
        let outcome = if result.is_ok() { "ok" } else { "error" };
        metrics::histogram!("orderflow_step_duration_seconds", "step" => name, "outcome" => outcome)
            .record(started.elapsed().as_secs_f64());
        let attempt = attempt(ctx);
        match result {
            Ok(value) => {
                self.stuck.succeeded(order, name, attempt).instrument(span).await;
                Ok(value)
            }
            Err(StepError::Final(kind, message)) => {
                Err(non_retryable(kind, message, Some(attempt)))
            }
            Err(StepError::Retry(error)) => {
                self.stuck.failed(order, name, attempt, &error).instrument(span).await;
                // The whole chain in the failure's message (Temporal UI, step history for
                // operators): "recording the capture: error returned from database: ...".
                Err(anyhow::anyhow!("{error:#}").into())
            }
        }
    }
}

/// How a step failed.
enum StepError {
    /// Decided: a business outcome (typed with its error code for the workflow) or a refusal.
    Final(FailureType, String),
    /// Anything else: retried with backoff.
    Retry(anyhow::Error),
}

/// `?` on any error (sqlx, a provider's, anyhow with context) makes it a retryable failure.
impl<E: Into<anyhow::Error>> From<E> for StepError {
    fn from(error: E) -> Self {
        Self::Retry(error.into())
    }
}

fn attempt(ctx: &ActivityContext) -> u32 {
    ctx.info().attempt
}

fn report(ctx: &ActivityContext) -> StepReport {
    StepReport { attempt: attempt(ctx) }
}

/// A business failure: final, typed with its error code for the workflow.
fn business(code: ErrorCode, message: String) -> StepError {
    StepError::Final(FailureType::Order(code), message)
}

/// A failure that is not retried; `attempt` goes into its details for the step's record.
fn non_retryable(
    kind: FailureType,
    message: impl Into<String>,
    attempt: Option<u32>,
) -> ActivityError {
    let failure = ApplicationFailure::builder(message.into())
        .type_name(kind.as_str().to_owned())
        .non_retryable(true);
    let failure = match attempt {
        Some(attempt) => failure.details(attempt).build(),
        None => failure.build(),
    };
    ActivityError::application(failure)
}

/// The trace this step runs in (the SDK's OpenTelemetry plugin makes the order's trace current
/// around each step), when traces are exported and this one is recorded.
fn current_trace_id() -> Option<String> {
    use opentelemetry::trace::TraceContextExt as _;
    let context = opentelemetry::Context::current();
    let span = context.span();
    let span_context = span.span_context();
    // A trace the caller asked not to record is never exported: nothing to link to.
    let recorded = span_context.is_valid() && span_context.is_sampled();
    recorded.then(|| span_context.trace_id().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use temporalio_common::ActivityDefinition;

    #[test]
    fn the_cancellation_is_logged_under_its_activity_type() {
        assert_eq!(orderflow_workflow::OrderActivities::request_cancellation.name(), CANCELLATION);
    }
}
