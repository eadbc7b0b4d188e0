//! Take the payment: authorize the order's total once, whatever is retried, and say whether the
//! customer must confirm it (then the order waits in `await_payment`). Compensation: void the
//! authorization, or refund the payment if it was captured (`refund_payment`).

use super::StepDeps;
use super::close_order::OrderEnd;
use super::run::{StepError, attempt, business, report};
use crate::saga::Undone;
use crate::step::{Ctx, Halt, halt_with, run_step, step_failure};
use crate::step_options::{PAYMENT_ATTEMPTS, StepPolicy};
use crate::{Attempted, FailureType, InDatabase, StepReport};
use anyhow::Context;
use chrono::{DateTime, Utc};
use orderflow_domain::{ErrorCode, Money, OrderId, PaymentStatus, Step};
use orderflow_providers::{AuthorizationOutcome, ProviderError};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentRequest {
    pub order_id: OrderId,
    pub amount: Money,
}

/// The payment's authorization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentReceipt {
    pub payment_id: String,
    pub attempt: u32,
    /// Set when the customer must confirm the payment: the order waits for the provider's
    /// answer (a `PaymentAnswer` signal) until then, when the stock hold expires. Absent in
    /// the receipts of orders started before payments were authorized and captured apart
    /// (their histories replay with no wait).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub awaiting_customer_until: Option<DateTime<Utc>>,
}

impl Attempted for PaymentReceipt {
    fn attempt(&self) -> u32 {
        self.attempt
    }
}

/// The workflow's call. Payments fail as declined (the provider said no) or, when retries ran
/// out on technical errors, as `payment_failed`.
pub async fn pay(ctx: &Ctx, request: PaymentRequest) -> Result<PaymentReceipt, Halt> {
    let policy = StepPolicy::until_done();
    let receipt =
        run_step(ctx, Step::ProcessPayment, ProcessPayment::process_payment, request, policy)
            .await
            .map_err(|e| match step_failure(&e) {
                Some(FailureType::Order(code)) => halt_with(code, &e),
                _ => halt_with(ErrorCode::PaymentFailed, &e),
            })?;
    ctx.state_mut(|w| w.state.payment_id = Some(receipt.payment_id.clone()));
    Ok(receipt)
}

/// The compensation: gives the money back. Retried until it succeeds.
pub fn refund(ctx: &Ctx, end: OrderEnd) -> Undone<'_> {
    Box::pin(async move {
        let policy = StepPolicy::until_done();
        let order = end.order_id;
        let _ =
            run_step(ctx, Step::RefundPayment, ProcessPayment::refund_payment, order, policy).await;
    })
}

pub struct ProcessPayment(pub Arc<StepDeps>);

#[activities]
impl ProcessPayment {
    /// Authorizes the order's payment once, whatever is retried; says whether the customer
    /// must confirm it. Fails with `payment_declined`, or `payment_failed` when the provider
    /// stays unreachable.
    #[activity(name = "process_payment")]
    pub async fn process_payment(
        self: Arc<Self>,
        ctx: ActivityContext,
        request: InDatabase<PaymentRequest>,
    ) -> Result<PaymentReceipt, ActivityError> {
        let deps = &self.0;
        let request = deps.admit(Step::ProcessPayment.as_str(), request)?;
        let order = request.order_id;
        let work = take_payment(deps, &ctx, order, request.amount);
        deps.run(&ctx, Step::ProcessPayment.as_str(), order, work).await
    }

    /// Compensation: voids the order's authorization, or refunds its payment if it was
    /// captured. Nothing if there is none.
    #[activity(name = "refund_payment")]
    pub async fn refund_payment(
        self: Arc<Self>,
        ctx: ActivityContext,
        order: InDatabase<OrderId>,
    ) -> Result<StepReport, ActivityError> {
        let deps = &self.0;
        let order = deps.admit(Step::RefundPayment.as_str(), order)?;
        deps.run(&ctx, Step::RefundPayment.as_str(), order, async {
            give_back(deps, order).await?;
            Ok(report(&ctx))
        })
        .await
    }
}

pub mod markers {
    pub use super::process_payment::*;
}

async fn take_payment(
    deps: &StepDeps,
    ctx: &ActivityContext,
    order: OrderId,
    amount: Money,
) -> Result<PaymentReceipt, StepError> {
    // A payment that already failed (a retry after a lost reply) is the answer.
    if let Some(payment) = deps.store.payment(order).await.context("reading the payment")?
        && payment.status == PaymentStatus::Failed
    {
        let reason = payment.decline_reason.unwrap_or_else(|| "payment declined".into());
        return Err(business(ErrorCode::PaymentDeclined, format!("payment declined: {reason}")));
    }
    // The order id is the provider's idempotency key: an authorization repeated after a
    // crash between "authorized" and "recorded" is the same payment.
    let authorization = match deps.payments.authorize(&order.to_string(), amount).await {
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
        AuthorizationOutcome::Authorized => PaymentStatus::Authorized,
        AuthorizationOutcome::ActionRequired => PaymentStatus::RequiresAction,
        AuthorizationOutcome::Declined(reason) => {
            deps.store
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
    let recorded = deps.store.record_authorization(order, &payment_id, amount, status).await;
    match recorded.context("recording the authorization")? {
        Some(hold_expires_at) => {
            // Orders reserved by workers older than holds have no expiry: they wait as long
            // as a hold made now would.
            let awaiting_customer_until = (status == PaymentStatus::RequiresAction)
                .then(|| hold_expires_at.unwrap_or_else(|| Utc::now() + deps.payment_hold));
            Ok(PaymentReceipt { payment_id, attempt: attempt(ctx), awaiting_customer_until })
        }
        None => {
            // The order was closed while this step was under way (a worker that froze or
            // lost its workflow): release the money at once.
            deps.payments.void(&payment_id).await.context("voiding a late authorization")?;
            Err(StepError::Final(
                FailureType::OrderClosed,
                "the order was closed; the authorization was voided".into(),
            ))
        }
    }
}

/// Gives the order's money back: voids its authorization, or refunds it if it was
/// captured. A void the provider refuses means the payment was captured: it is refunded.
/// Without a record, the provider is asked for the order's payment: a step that died
/// between authorizing and recording (or whose retries ran out on a lost answer) may have
/// left an authorization that only the provider knows.
async fn give_back(deps: &StepDeps, order: OrderId) -> Result<(), StepError> {
    let recorded = deps.store.payment(order).await.context("reading the payment")?;
    // `None`: a payment only the provider knows (its status unrecorded here).
    let (payment_id, status) = match recorded {
        Some(payment) => match payment.payment_id {
            Some(id) => (id, Some(payment.status)),
            // A decline recorded by a worker older than payment intents.
            None => return Ok(()),
        },
        None => {
            let held = deps.payments.payment_of(&order.to_string()).await;
            match held.context("looking the payment up at the provider")? {
                Some(id) => (id, None),
                None => return Ok(()),
            }
        }
    };
    let captured = match status {
        Some(status) if status.is_settled_without_money() => return Ok(()),
        Some(PaymentStatus::Captured) => true,
        _ => match deps.payments.void(&payment_id).await {
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
        let refund_id = deps
            .payments
            .refund(&payment_id, &format!("refund-{order}"))
            .await
            .context("refunding at the provider")?;
        deps.store.record_capture(order).await.context("recording the capture")?;
        deps.store.record_refund(order, &refund_id).await.context("recording the refund")?;
    } else {
        deps.store.record_void(order).await.context("recording the void")?;
    }
    Ok(())
}
