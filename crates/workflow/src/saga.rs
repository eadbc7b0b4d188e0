//! The saga's compensations. A step that changes something outside the order (stock held, money
//! authorized) has a compensation in its own module; the saga lists them in the order of its
//! steps, and when the order cannot complete they run newest first.
//!
//! All of them run, whatever step this run of the workflow reached: a step is a local activity,
//! which can take effect and then be forgotten when its worker dies before the workflow task
//! completes, and the run that replays the order may then stop (a cancellation) before it
//! reaches that step again. Each compensation is idempotent and asks the database or the
//! provider what is really there, so undoing what never happened is harmless and costs a step.

use crate::step::Ctx;
use crate::steps::close_order::OrderEnd;
use futures::future::LocalBoxFuture;

/// A compensation under way.
pub type Undone<'a> = LocalBoxFuture<'a, ()>;

/// A compensation: given how the order ends, undoes what its step did.
pub type Undo = for<'a> fn(&'a Ctx, OrderEnd) -> Undone<'a>;

/// The saga's compensations, in the order of its steps.
pub struct Saga<const N: usize>(pub [Undo; N]);

impl<const N: usize> Saga<N> {
    /// Runs every compensation, newest first.
    pub async fn unwind(&self, ctx: &Ctx, end: OrderEnd) {
        for undo in self.0.iter().rev() {
            undo(ctx, end.clone()).await;
        }
    }
}
