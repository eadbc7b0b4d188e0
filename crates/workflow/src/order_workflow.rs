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

use crate::saga::Saga;
use crate::step::{Ctx, Halt, clock, refuse_if_foreign};
use crate::step_options::StepPolicy;
use crate::steps::await_payment::{self, PaymentAnswer};
use crate::steps::cancel::{Cancel, CancelAccepted, CancelDecision};
use crate::steps::close_order::{self, OrderEnd};
use crate::steps::process_payment::{self, PaymentRequest};
use crate::steps::{confirm_order, create_order, notify_customer, reserve_stock};
use crate::{InDatabase, OrderInput};
use orderflow_domain::{CancelRefusal, DatabaseId, NewOrder, OrderEnding, OrderState, OrderStatus};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{SyncWorkflowContext, WorkflowContext, WorkflowContextView, WorkflowResult};

#[workflow]
pub struct OrderWorkflow {
    pub(crate) order: NewOrder,
    /// The database the order belongs to; every step carries it (see [`InDatabase`]).
    pub(crate) database: Option<DatabaseId>,
    pub(crate) state: OrderState,
    /// The provider's answers to payments awaiting the customer (see [`PaymentAnswer`]): the
    /// first for each payment id, a few at most. Kept by payment id because an answer can
    /// arrive before the workflow knows its payment's id.
    payment_answers: Vec<PaymentAnswer>,
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
        notify_customer::notify(ctx).await;
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
            .execute_local_activity(Cancel::request_cancellation, input, options)
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
    pub(crate) fn answer(&self) -> Option<&PaymentAnswer> {
        let id = self.state.payment_id.as_deref()?;
        self.payment_answers.iter().find(|a| a.payment_id == id)
    }
}

/// The compensations of the steps below that change something outside the order, in the
/// steps' order (see [`Saga`] for why all of them run on a roll back).
const SAGA: Saga<2> = Saga([reserve_stock::release, process_payment::refund]);

/// The saga: each step in turn, and between steps a check for a cancellation.
async fn go_forward(ctx: &Ctx) -> Result<(), Halt> {
    let order = ctx.state(|w| w.order.clone());
    let id = order.order_id;

    create_order::create(ctx, order.clone()).await?;
    stop_if_cancelled(ctx)?;

    reserve_stock::reserve(ctx, id).await?;
    stop_if_cancelled(ctx)?;

    let payment = PaymentRequest { order_id: id, amount: order.total };
    let receipt = process_payment::pay(ctx, payment).await?;
    stop_if_cancelled(ctx)?;
    if let Some(until) = receipt.awaiting_customer_until {
        await_payment::wait(ctx, until).await?;
        stop_if_cancelled(ctx)?;
    }

    // The point of no return: once this step has begun, cancellations are refused.
    confirm_order::confirm(ctx, id).await?;
    let now = clock(ctx.workflow_time());
    ctx.state_mut(|w| w.state.complete(now));
    Ok(())
}

/// The roll back does not trust the history: it first closes the order in the database, which
/// fences out any step still running somewhere (it can no longer hold stock or keep a payment)
/// and says how the order really ends; then the compensations give back whatever is there.
/// They are retried until they succeed and run on their own cancellation tokens: a cancelled
/// workflow still gives the customer's money and the shop's stock back.
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
    match close_order::close(ctx, end.clone()).await {
        Some(OrderStatus::Completed) => {
            // Confirmed after all, by a step this workflow lost track of: nothing to undo.
            let now = clock(ctx.workflow_time());
            ctx.state_mut(|w| w.state.complete(now));
            return;
        }
        // The customer's cancellation was recorded before the failure: it ends cancelled.
        Some(OrderStatus::Cancelled) => ctx.state_mut(|w| w.state.settle_as_cancelled()),
        _ => {}
    }
    SAGA.unwind(ctx, end).await;
    let now = clock(ctx.workflow_time());
    ctx.state_mut(|w| w.state.finish_unsuccessfully(now));
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
