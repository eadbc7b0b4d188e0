//! Await the payment: when the customer must confirm it, the order waits durably (a timer and
//! a condition: nothing runs meanwhile) for the provider's answer, which the webhook endpoint
//! hands to the workflow (signal `payment_answered`), until its stock hold expires. A step of
//! the workflow alone: no activity, nothing to compensate (the payment's own compensation,
//! `refund_payment`, voids the authorization).

use crate::order_workflow::OrderWorkflow;
use crate::step::{Ctx, Halt, clock};
use chrono::{DateTime, Utc};
use orderflow_domain::{ErrorCode, Step};
use serde::{Deserialize, Serialize};

/// The provider's answer to a payment that needed the customer's confirmation. Repeated or
/// late answers are harmless: the workflow takes the first one for its own payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentAnswer {
    /// The provider's event that carried it.
    pub event_id: String,
    pub payment_id: String,
    pub outcome: PaymentOutcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum PaymentOutcome {
    Authorized,
    Failed { reason: String },
}

/// The workflow's wait, until `until`. Ends on the provider's answer, at the deadline
/// (`payment_timeout`), or on a cancellation, which is honoured at once (the caller's check
/// for cancellation halts).
pub async fn wait(ctx: &Ctx, until: DateTime<Utc>) -> Result<(), Halt> {
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
