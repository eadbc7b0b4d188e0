//! `OrderWorkflow`: create → reserve stock (held until an expiry) → authorize the payment →
//! if the customer must confirm it, wait for the provider's answer until the hold expires →
//! confirm (and capture) → notify; on failure or cancellation the compensations in reverse
//! order (void or refund, release), then notify.
//!
//! Every step is a local activity (see `StepPolicy::local`). A local step can take effect and
//! then be forgotten, when its worker dies before the workflow task that ran it completes; the
//! workflow is then replayed elsewhere from an older history. So nothing here trusts the
//! history for what cannot be repeated: PostgreSQL decides cancel against confirm, and the roll
//! back asks it how the order really ends (see `orderflow_store`).
//!
//! Business outcomes (failed, cancelled) are results, not workflow failures: the workflow
//! always completes and returns the final [`OrderState`].

use crate::contracts::{
    Attempted, CancelAccepted, CancelDecision, FailureType, InDatabase, NotificationRequest,
    OrderActivities, OrderEnd, OrderInput, PaymentAnswer, PaymentOutcome, PaymentRequest,
};
use crate::step_options::StepPolicy;
use chrono::{DateTime, Utc};
use orderflow_domain::{
    CancelRefusal, DatabaseId, ErrorCode, NewOrder, OrderEnding, OrderState, OrderStatus, Step,
    TEMPORARY_PROBLEM,
};
use std::time::SystemTime;
use temporalio_common::ActivityDefinition;
use temporalio_common::protos::temporal::api::failure::v1::{Failure, failure::FailureInfo};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{
    ActivityExecutionError, SyncWorkflowContext, WorkflowContext, WorkflowContextView,
    WorkflowResult,
};

#[workflow]
pub struct OrderWorkflow {
    order: NewOrder,
    /// The database the order belongs to; every step carries it (see [`InDatabase`]).
    database: Option<DatabaseId>,
    state: OrderState,
    /// The provider's answers to payments awaiting the customer (see [`PaymentAnswer`]): the
    /// first for each payment id, a few at most. Kept by payment id because an answer can
    /// arrive before the workflow knows its payment's id.
    payment_answers: Vec<PaymentAnswer>,
}

/// Why the forward path stopped before the order completed.
enum Halt {
    Failed { code: ErrorCode, message: String },
    Cancelled,
}

#[workflow_methods]
impl OrderWorkflow {
    #[init]
    pub fn new(ctx: &WorkflowContextView, input: OrderInput) -> Self {
        // The start time recorded in history: deterministic, like all workflow time.
        let state = OrderState::new(&input.order, clock(ctx.start_time()));
        Self { order: input.order, database: input.database, state, payment_answers: Vec::new() }
    }

    #[run(name = "OrderWorkflow")]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<OrderState> {
        if let Err(halt) = go_forward(ctx).await {
            roll_back(ctx, halt).await;
        }
        notify_customer(ctx).await;
        // A cancellation still being decided (its step in flight) gets its answer before the
        // workflow ends: completing would abort it, and its caller would hear a refusal for a
        // cancellation the database may have recorded.
        let handlers = ctx.clone();
        let _ = ctx.wait_condition(move |_| handlers.all_handlers_finished()).await;
        Ok(ctx.state(|w| w.state.clone()))
    }

    /// The order's state object (`GET /api/orders/state`).
    #[query(name = "state")]
    pub fn state(&self, _ctx: &WorkflowContextView) -> OrderState {
        self.state.clone()
    }

    /// The provider's answer to the payment, from its webhook. The first answer for this
    /// order's payment counts; a repeated one, or one for another payment, changes nothing.
    #[signal(name = "payment_answered")]
    pub fn payment_answered(
        &mut self,
        _ctx: &mut SyncWorkflowContext<Self>,
        answer: PaymentAnswer,
    ) {
        let ours = self.state.payment_id.as_deref().is_none_or(|id| id == answer.payment_id);
        let known = self.payment_answers.iter().any(|a| a.payment_id == answer.payment_id);
        if ours && !known && self.payment_answers.len() < MAX_PAYMENT_ANSWERS {
            self.payment_answers.push(answer);
        }
    }

    /// Refuses at once only a cancellation of an order that has ended other than cancelled
    /// here. Everything else is the database's to decide (below): the workflow's view can be
    /// behind it, for instance after a workflow task that recorded a cancellation failed and was
    /// retried, and an answer decided here could then contradict what the order does.
    #[update_validator(cancel)]
    fn validate_cancel(
        &self,
        _ctx: &WorkflowContextView,
        _input: &(),
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        match self.state.status {
            status if status.is_terminal() && status != OrderStatus::Cancelled => {
                Err(CancelRefusal::AlreadyFinished(status).to_string().into())
            }
            _ => Ok(()),
        }
    }

    /// Accepts a cancellation; it takes effect at the next step boundary.
    ///
    /// The database has the last word: the cancellation is recorded under the order's row
    /// lock, where it races the start of confirmation, and whichever commits first wins. The
    /// answer is what the order will do: accepted means it ends cancelled (asking again, even
    /// once it has, is accepted again); refused means it does not.
    #[update(name = "cancel")]
    pub async fn cancel(
        ctx: &mut WorkflowContext<Self>,
        _input: (),
    ) -> Result<CancelAccepted, Box<dyn std::error::Error + Send + Sync>> {
        let input = ctx.state(|w| InDatabase { database: w.database, input: w.order.order_id });
        let options = StepPolicy::until_done().local();
        let decision = ctx
            .execute_local_activity(OrderActivities::request_cancellation, input, options)
            .await
            .inspect_err(refuse_if_foreign)?;
        match decision {
            CancelDecision::Accepted | CancelDecision::TooLate(OrderStatus::Cancelled) => {
                ctx.state_mut(|w| w.state.note_cancellation_recorded());
                Ok(CancelAccepted { status: ctx.state(|w| w.state.status) })
            }
            CancelDecision::TooLate(status) => Err(CancelRefusal::AlreadyFinished(status).into()),
            CancelDecision::Confirming => Err(CancelRefusal::PastPointOfNoReturn.into()),
        }
    }
}

/// Answers kept for payments other than the order's own, at most (a provider confused, or
/// answers before the payment's id is known).
const MAX_PAYMENT_ANSWERS: usize = 4;

impl OrderWorkflow {
    /// The provider's answer about this order's payment, once its id is known.
    fn answer(&self) -> Option<&PaymentAnswer> {
        let id = self.state.payment_id.as_deref()?;
        self.payment_answers.iter().find(|a| a.payment_id == id)
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
        StepPolicy::until_done(),
    )
    .await
    .map_err(failure)?;
    stop_if_cancelled(ctx)?;

    run_step(ctx, Step::ReserveStock, OrderActivities::reserve_stock, id, StepPolicy::until_done())
        .await
        .map_err(failure)?;
    stop_if_cancelled(ctx)?;

    let payment = PaymentRequest { order_id: id, amount: order.total };
    let receipt = run_step(
        ctx,
        Step::ProcessPayment,
        OrderActivities::process_payment,
        payment,
        StepPolicy::until_done(),
    )
    .await
    .map_err(payment_failure)?;
    ctx.state_mut(|w| w.state.payment_id = Some(receipt.payment_id));
    stop_if_cancelled(ctx)?;
    if let Some(until) = receipt.awaiting_customer_until {
        await_payment(ctx, until).await?;
        stop_if_cancelled(ctx)?;
    }

    // The point of no return: once this step has begun, cancellations are refused.
    run_step(ctx, Step::ConfirmOrder, OrderActivities::confirm_order, id, StepPolicy::until_done())
        .await
        .map_err(failure)?;
    let now = clock(ctx.workflow_time());
    ctx.state_mut(|w| w.state.complete(now));
    Ok(())
}

/// Waits durably (a timer and a condition: nothing runs meanwhile) for the customer to
/// confirm the payment, until `until`, the stock hold's expiry. Ends on the provider's answer,
/// at the deadline (`payment_timeout`), or on a cancellation, which is honoured at once.
async fn await_payment(ctx: &Ctx, until: DateTime<Utc>) -> Result<(), Halt> {
    let started = clock(ctx.workflow_time());
    ctx.state_mut(|w| w.state.begin(Step::AwaitPayment, started));
    let settled = |w: &OrderWorkflow| w.answer().is_some() || w.state.is_cancelled;
    let left = (until - started).to_std().unwrap_or_default();
    if !ctx.state(settled) && !left.is_zero() {
        // The condition also ends on Temporal's own cancellation of the workflow.
        temporalio_sdk::workflows::select! {
            _ = ctx.timer(left) => {}
            _ = ctx.wait_condition(settled) => {}
        }
    }
    let ended = clock(ctx.workflow_time());
    let outcome = ctx.state(|w| w.answer().map(|a| a.outcome.clone()));
    let (halt, error) = match outcome {
        Some(PaymentOutcome::Authorized) => (None, None),
        Some(PaymentOutcome::Failed { reason }) => {
            let message = format!("payment declined: {reason}");
            let halt = Halt::Failed { code: ErrorCode::PaymentDeclined, message: message.clone() };
            (Some(halt), Some(message))
        }
        // Cancelled while waiting: the caller's `stop_if_cancelled` halts.
        None if ctx.state(|w| w.state.is_cancelled) || ctx.cancellation_token().is_cancelled() => {
            (None, Some("cancelled while waiting for the payment".to_owned()))
        }
        None => {
            let message = format!(
                "the payment was not confirmed by {}",
                until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            );
            let halt = Halt::Failed { code: ErrorCode::PaymentTimeout, message: message.clone() };
            (Some(halt), Some(message))
        }
    };
    ctx.state_mut(|w| w.state.end_step(ended, 1, error));
    halt.map_or(Ok(()), Err)
}

/// Compensations, newest first: void (or refund) the payment, then release the stock. Both are
/// idempotent and retried until they succeed, and they run on their own cancellation tokens: a
/// cancelled workflow still gives the customer's money and the shop's stock back.
///
/// The roll back does not trust the history either: it first closes the order in the database,
/// which fences out any step still running somewhere (it can no longer hold stock or keep a
/// payment) and says how the order really ends; then it refunds and releases whatever is there.
async fn roll_back(ctx: &Ctx, halt: Halt) {
    let id = ctx.state(|w| w.order.order_id);
    let ending = match halt {
        Halt::Failed { code, message } => {
            ctx.state_mut(|w| w.state.record_failure(code, message.clone()));
            OrderEnding::Failed { code, message }
        }
        Halt::Cancelled => OrderEnding::Cancelled,
    };
    let end = OrderEnd { order_id: id, ending };
    // Every step here is retried until it succeeds: an error is a non-retryable bug, already
    // recorded in the step history, and the steps after it must still run.
    let closed = run_step(
        ctx,
        Step::CloseOrder,
        OrderActivities::close_order,
        end.clone(),
        StepPolicy::until_done(),
    )
    .await;
    match closed.map(|report| report.status) {
        Ok(OrderStatus::Completed) => {
            // Confirmed after all, by a step this workflow lost track of: nothing to undo.
            let now = clock(ctx.workflow_time());
            ctx.state_mut(|w| w.state.complete(now));
            return;
        }
        // The customer's cancellation was recorded before the failure: it ends cancelled.
        Ok(OrderStatus::Cancelled) => ctx.state_mut(|w| w.state.settle_as_cancelled()),
        _ => {}
    }
    let _ = run_step(
        ctx,
        Step::RefundPayment,
        OrderActivities::refund_payment,
        id,
        StepPolicy::until_done(),
    )
    .await;
    let _ = run_step(
        ctx,
        Step::ReleaseStock,
        OrderActivities::release_stock,
        end,
        StepPolicy::until_done(),
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
        StepPolicy::notification(),
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
async fn run_step<A, I>(
    ctx: &Ctx,
    step: Step,
    activity: A,
    input: I,
    policy: StepPolicy,
) -> Result<A::Output, ActivityExecutionError>
where
    A: ActivityDefinition<Input = InDatabase<I>>,
    A::Output: Attempted,
{
    let max_attempts = policy.max_attempts();
    let started = clock(ctx.workflow_time());
    ctx.state_mut(|w| w.state.begin(step, started));
    let input = InDatabase { database: ctx.state(|w| w.database), input };
    let result = ctx.execute_local_activity(activity, input, policy.local()).await;
    if let Err(e) = &result {
        refuse_if_foreign(e);
    }
    let ended = clock(ctx.workflow_time());
    let (attempts, error) = match &result {
        Ok(output) => (output.attempt(), None),
        Err(e) => (failed_attempts(e, max_attempts), Some(customer_text(e))),
    };
    ctx.state_mut(|w| w.state.end_step(ended, attempts, error));
    result
}

/// A failed step as an order failure: business errors keep their code, anything else is an
/// internal error.
fn failure(e: ActivityExecutionError) -> Halt {
    match failure_type(&e) {
        // Confirmation lost the race against a cancellation recorded in the database.
        Some(FailureType::OrderCancelled) => Halt::Cancelled,
        Some(FailureType::Order(code)) => halt_with(code, &e),
        _ => halt_with(ErrorCode::InternalError, &e),
    }
}

/// The order fails with `code`; the customer reads the business reason, or for a technical
/// failure a generic sentence (the details are in the activity's log and the operator view).
fn halt_with(code: ErrorCode, e: &ActivityExecutionError) -> Halt {
    let message = if code.is_business() { message(e) } else { code.customer_message().to_owned() };
    Halt::Failed { code, message }
}

/// A step's error as the customer may read it (in the state object's step history).
fn customer_text(e: &ActivityExecutionError) -> String {
    let for_the_customer = failure_type(e).is_some_and(|t| t.is_for_the_customer());
    if for_the_customer { message(e) } else { TEMPORARY_PROBLEM.to_owned() }
}

/// Payments fail as declined (the provider said no) or, when retries ran out on technical
/// errors, as `payment_failed`.
fn payment_failure(e: ActivityExecutionError) -> Halt {
    match failure_type(&e) {
        Some(FailureType::Order(code)) => halt_with(code, &e),
        _ => halt_with(ErrorCode::PaymentFailed, &e),
    }
}

/// A worker connected to another deployment's database refused the step, touching nothing.
/// Failing this workflow task (a panic in workflow code does that) records nothing of it, and
/// Temporal hands the task to another worker: eventually one of the order's own deployment.
fn refuse_if_foreign(e: &ActivityExecutionError) {
    if failure_type(e) == Some(FailureType::ForeignDatabase) {
        panic!("{}", message(e));
    }
}

/// The step's own error: a local activity's failure is the error itself (a regular
/// activity's would wrap it as its cause).
fn root_failure(e: &ActivityExecutionError) -> Option<&Failure> {
    e.cause().map(|cause| cause.failure()).or_else(|| e.failure())
}

fn failure_type(e: &ActivityExecutionError) -> Option<FailureType> {
    match &root_failure(e)?.failure_info {
        Some(FailureInfo::ApplicationFailureInfo(info)) => FailureType::parse(&info.r#type),
        _ => None,
    }
}

/// How many attempts a failed step made: the number a final failure reports in its details
/// (see `orderflow_activities`), else the policy's maximum when its retries ran out (a local
/// activity's retryable error only reaches the workflow once they are spent), else one.
fn failed_attempts(e: &ActivityExecutionError, max_attempts: u32) -> u32 {
    let Some(FailureInfo::ApplicationFailureInfo(info)) =
        root_failure(e).and_then(|f| f.failure_info.as_ref())
    else {
        return 1;
    };
    let reported = info.details.as_ref().and_then(|d| d.payloads.first());
    match reported.and_then(|p| serde_json::from_slice::<u32>(&p.data).ok()) {
        Some(attempts) => attempts,
        None if !info.non_retryable => max_attempts,
        None => 1,
    }
}

/// The most specific message: the activity's own error rather than "activity task failed".
fn message(e: &ActivityExecutionError) -> String {
    root_failure(e).map_or_else(|| e.to_string(), |f| f.message.clone())
}

fn clock(time: Option<SystemTime>) -> DateTime<Utc> {
    time.map(DateTime::<Utc>::from).unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}
