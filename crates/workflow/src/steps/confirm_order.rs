//! Confirm the order, the point of no return: once it has begun, cancellations are refused.
//! The payment is captured, then the held stock is sold and the order completed. Nothing to
//! compensate: a capture refused for good fails the order before it completes, and the roll
//! back refunds what was taken.

use super::StepDeps;
use super::run::{StepError, business, report};
use crate::step::{Ctx, Halt, failure, run_step};
use crate::step_options::StepPolicy;
use crate::{FailureType, InDatabase, StepReport};
use anyhow::Context;
use orderflow_domain::{ErrorCode, OrderId, PaymentStatus, Step};
use orderflow_providers::ProviderError;
use orderflow_store::Confirmation;
use std::sync::Arc;
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

/// The workflow's call.
pub async fn confirm(ctx: &Ctx, order: OrderId) -> Result<(), Halt> {
    let policy = StepPolicy::until_done();
    run_step(ctx, Step::ConfirmOrder, ConfirmOrder::confirm_order, order, policy)
        .await
        .map(drop)
        .map_err(failure)
}

pub struct ConfirmOrder(pub Arc<StepDeps>);

#[activities]
impl ConfirmOrder {
    /// Captures the payment, moves held stock to sold and completes the order. Fails with
    /// `order_cancelled` if the customer's cancellation was recorded first.
    #[activity(name = "confirm_order")]
    pub async fn confirm_order(
        self: Arc<Self>,
        ctx: ActivityContext,
        order: InDatabase<OrderId>,
    ) -> Result<StepReport, ActivityError> {
        let deps = &self.0;
        let order = deps.admit(Step::ConfirmOrder.as_str(), order)?;
        deps.run(&ctx, Step::ConfirmOrder.as_str(), order, async {
            // The point of no return first, under the order's row lock (it and a cancellation
            // exclude each other); then the money is taken; only then is the order completed,
            // so that a completed order always has its payment captured (docs/payments.md).
            match deps.store.begin_confirmation(order).await.context("beginning confirmation")? {
                Confirmation::Confirmed => {}
                // Completed by an earlier attempt, after its capture; or by a worker older than
                // this rule, which captured after completing: make sure the money was taken.
                Confirmation::AlreadyConfirmed => {
                    capture(deps, order).await?;
                    return Ok(report(&ctx));
                }
                Confirmation::Refused => {
                    return Err(StepError::Final(
                        FailureType::OrderCancelled,
                        "the customer's cancellation was recorded first".into(),
                    ));
                }
            }
            capture(deps, order).await?;
            match deps.store.confirm_order(order).await.context("confirming the order")? {
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
}

pub mod markers {
    pub use super::confirm_order::*;
}

/// Captures the order's payment, unless it is captured already (a retry, or an order
/// charged at once by a worker older than authorizations). A capture the provider refuses
/// for good (the authorization failed, was voided or expired: a 409) fails the order with
/// `payment_failed`: retrying could never take the money, and the order must not complete
/// without it.
async fn capture(deps: &StepDeps, order: OrderId) -> Result<(), StepError> {
    let payment = deps.store.payment(order).await.context("reading the payment")?;
    let Some(payment) = payment else {
        return Err(StepError::Retry(anyhow::anyhow!("a confirmed order has no payment")));
    };
    if matches!(payment.status, PaymentStatus::Captured | PaymentStatus::Refunded) {
        return Ok(());
    }
    let payment_id = payment.payment_id.context("the payment has no provider id")?;
    match deps.payments.capture(&payment_id).await {
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
    deps.store.record_capture(order).await.context("recording the capture")?;
    Ok(())
}
