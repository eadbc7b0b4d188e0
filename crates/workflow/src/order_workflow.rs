//! `OrderWorkflow`: create → reserve stock → take payment → confirm → notify, and on failure
//! or cancellation the compensations in reverse order (refund, release), then notify.
//!
//! Business outcomes (failed, cancelled) are results, not workflow failures: the workflow
//! always completes and returns the final [`OrderState`].

use crate::contracts::{
    Attempted, CancelAccepted, NotificationRequest, OrderActivities, PaymentRequest, ReleaseRequest,
};
use crate::step_options;
use chrono::{DateTime, Utc};
use orderflow_domain::{ErrorCode, NewOrder, OrderEnding, OrderState, Step};
use std::time::SystemTime;
use temporalio_common::ActivityDefinition;
use temporalio_common::error::{IncomingError, RetryState};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{
    ActivityExecutionError, ActivityOptions, SyncWorkflowContext, WorkflowContext,
    WorkflowContextView, WorkflowResult,
};

#[workflow]
pub struct OrderWorkflow {
    order: NewOrder,
    state: OrderState,
}

/// Why the forward path stopped before the order completed.
enum Halt {
    Failed { code: ErrorCode, message: String },
    Cancelled,
}

#[workflow_methods]
impl OrderWorkflow {
    #[init]
    pub fn new(ctx: &WorkflowContextView, order: NewOrder) -> Self {
        // The start time recorded in history: deterministic, like all workflow time.
        let state = OrderState::new(&order, clock(ctx.start_time()));
        Self { order, state }
    }

    #[run(name = "OrderWorkflow")]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<OrderState> {
        if let Err(halt) = go_forward(ctx).await {
            roll_back(ctx, halt).await;
        }
        notify_customer(ctx).await;
        Ok(ctx.state(|w| w.state.clone()))
    }

    /// The order's state object (`GET /api/orders/state`).
    #[query(name = "state")]
    pub fn state(&self, _ctx: &WorkflowContextView) -> OrderState {
        self.state.clone()
    }

    /// Refuses a cancellation that could not be honoured, so the caller hears "too late"
    /// synchronously instead of a request that is silently ignored.
    #[update_validator(cancel)]
    fn validate_cancel(
        &self,
        _ctx: &WorkflowContextView,
        _input: &(),
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        match self.state.cancel_refusal() {
            Some(refusal) => Err(refusal.to_string().into()),
            None => Ok(()),
        }
    }

    /// Accepts a cancellation; it takes effect at the next step boundary.
    #[update(name = "cancel")]
    pub fn cancel(&mut self, _ctx: &mut SyncWorkflowContext<Self>, _input: ()) -> CancelAccepted {
        // The validator has just checked this cannot be refused; should it be anyway, the
        // state is unchanged and the order simply completes.
        let _ = self.state.request_cancel();
        CancelAccepted { status: self.state.status }
    }
}

type Ctx = WorkflowContext<OrderWorkflow>;

async fn go_forward(ctx: &Ctx) -> Result<(), Halt> {
    let order = ctx.state(|w| w.order.clone());
    let id = order.order_id;

    run_step(
        ctx,
        Step::CreateOrder,
        OrderActivities::create_order,
        order.clone(),
        step_options::until_done(),
    )
    .await
    .map_err(failure)?;
    stop_if_cancelled(ctx)?;

    run_step(
        ctx,
        Step::ReserveStock,
        OrderActivities::reserve_stock,
        id,
        step_options::until_done(),
    )
    .await
    .map_err(failure)?;
    stop_if_cancelled(ctx)?;

    let payment = PaymentRequest { order_id: id, amount: order.total };
    let receipt = run_step(
        ctx,
        Step::ProcessPayment,
        OrderActivities::process_payment,
        payment,
        step_options::payment(),
    )
    .await
    .map_err(payment_failure)?;
    ctx.state_mut(|w| w.state.payment_id = Some(receipt.payment_id));
    stop_if_cancelled(ctx)?;

    // The point of no return: once this step has begun, cancellations are refused.
    run_step(
        ctx,
        Step::ConfirmOrder,
        OrderActivities::confirm_order,
        id,
        step_options::until_done(),
    )
    .await
    .map_err(failure)?;
    let now = clock(ctx.workflow_time());
    ctx.state_mut(|w| w.state.complete(now));
    Ok(())
}

/// Compensations, newest first: refund the payment if one may have been taken, then release
/// the stock (which also records how the order ended). Both are idempotent and retried until
/// they succeed, and they run on their own cancellation tokens: a cancelled workflow still
/// gives the customer's money and the shop's stock back.
async fn roll_back(ctx: &Ctx, halt: Halt) {
    let id = ctx.state(|w| w.order.order_id);
    let ending = match halt {
        Halt::Failed { code, message } => {
            ctx.state_mut(|w| w.state.record_failure(code, message.clone()));
            OrderEnding::Failed { code, message }
        }
        Halt::Cancelled => OrderEnding::Cancelled,
    };
    let payment_attempted =
        ctx.state(|w| w.state.step_history.iter().any(|r| r.step == Step::ProcessPayment));
    let declined = matches!(ending, OrderEnding::Failed { code: ErrorCode::PaymentDeclined, .. });
    if payment_attempted && !declined {
        // Retried until it succeeds; an error here means a non-retryable bug, already recorded
        // in the step history, and releasing the stock must still happen.
        let _ = run_step(
            ctx,
            Step::RefundPayment,
            OrderActivities::refund_payment,
            id,
            step_options::until_done(),
        )
        .await;
    }
    let release = ReleaseRequest { order_id: id, ending };
    let _ = run_step(
        ctx,
        Step::ReleaseStock,
        OrderActivities::release_stock,
        release,
        step_options::until_done(),
    )
    .await;
    let now = clock(ctx.workflow_time());
    ctx.state_mut(|w| w.state.finish_unsuccessfully(now));
}

/// Tells the customer how the order ended. A failure here does not change the outcome; it is
/// visible as `customer_notified: false`.
async fn notify_customer(ctx: &Ctx) {
    let request = ctx.state(|w| NotificationRequest {
        order_id: w.order.order_id,
        customer_id: w.order.customer_id.clone(),
        kind: w.state.notification(),
        message: w.state.customer_message(),
    });
    let notified = run_step(
        ctx,
        Step::NotifyCustomer,
        OrderActivities::notify_customer,
        request,
        step_options::notification(),
    )
    .await
    .is_ok();
    ctx.state_mut(|w| w.state.customer_notified = notified);
}

/// Honours an accepted cancel update, and Temporal's own cancellation (from the UI or CLI) by
/// the same rule. Called between steps only, so the decision and the next step's start happen
/// in one workflow activation: no cancellation can slip in between.
fn stop_if_cancelled(ctx: &Ctx) -> Result<(), Halt> {
    if ctx.cancellation_token().is_cancelled() {
        ctx.state_mut(|w| {
            let _ = w.state.request_cancel();
        });
    }
    if ctx.state(|w| w.state.is_cancelled) { Err(Halt::Cancelled) } else { Ok(()) }
}

/// Runs one activity as one step of the order, recording its start, end, retries and error.
async fn run_step<A>(
    ctx: &Ctx,
    step: Step,
    activity: A,
    input: A::Input,
    options: ActivityOptions,
) -> Result<A::Output, ActivityExecutionError>
where
    A: ActivityDefinition,
    A::Output: Attempted,
{
    let max_attempts = options.retry_policy.as_ref().map_or(0, |p| p.maximum_attempts());
    let started = clock(ctx.workflow_time());
    ctx.state_mut(|w| w.state.begin(step, started));
    let result = ctx.execute_activity(activity, input, options).await;
    let ended = clock(ctx.workflow_time());
    let (attempts, error) = match &result {
        Ok(output) => (output.attempt(), None),
        Err(e) => {
            let exhausted = matches!(e, ActivityExecutionError::Failed(f) if f.retry_state() == RetryState::MaximumAttemptsReached);
            (if exhausted { max_attempts } else { 1 }, Some(message(e)))
        }
    };
    ctx.state_mut(|w| w.state.end_step(ended, attempts, error));
    result
}

/// A failed step as an order failure: business errors keep their code, anything else is an
/// internal error.
fn failure(e: ActivityExecutionError) -> Halt {
    let code = application_type(&e).and_then(ErrorCode::parse).unwrap_or(ErrorCode::InternalError);
    Halt::Failed { code, message: message(&e) }
}

/// Payments fail as declined (the provider said no) or, when retries ran out on technical
/// errors, as `payment_failed`.
fn payment_failure(e: ActivityExecutionError) -> Halt {
    match application_type(&e).and_then(ErrorCode::parse) {
        Some(code) => Halt::Failed { code, message: message(&e) },
        None => Halt::Failed { code: ErrorCode::PaymentFailed, message: message(&e) },
    }
}

fn application_type(e: &ActivityExecutionError) -> Option<&str> {
    match e.cause()? {
        IncomingError::Application(app) => app.type_name(),
        _ => None,
    }
}

/// The most specific message: the activity's own error rather than "activity task failed".
fn message(e: &ActivityExecutionError) -> String {
    match e.cause() {
        Some(cause) => cause.failure().message.clone(),
        None => e.to_string(),
    }
}

fn clock(time: Option<SystemTime>) -> DateTime<Utc> {
    time.map(DateTime::<Utc>::from).unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}
