//! The payment provider as the saga sees it: authorize while the order is placed, capture when
//! it is confirmed, void or refund when it is not (docs/payments.md). Two implementations:
//! [`crate::payment_provider::PaymentProvider`], a provider reached over HTTP (the simulator
//! `orderflow psp`, or a real one behind an adapter like it), and [`SimulatedPaymentGateway`],
//! the in-process simulation OrderFlow started with, kept for a worker run without a provider
//! (`PAYMENT_PROVIDER_URL` unset): it authorizes at once or declines, never asks the customer.

use crate::chance::FailureSchedule;
use crate::payment_provider::IntentView;
use async_trait::async_trait;
use orderflow_domain::Money;
use std::time::Duration;
use uuid::Uuid;

/// Why a call to the provider did not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// Down, slow or failing: the same call may succeed later (retry it).
    #[error("payment provider unavailable: {0}")]
    Unavailable(String),
    /// The payment's state does not allow the call (e.g. capturing a voided authorization).
    #[error("payment provider refused: {0}")]
    Refused(String),
    /// The provider does not know what was named, or rejected the request as malformed.
    #[error("payment provider rejected the request: {0}")]
    Rejected(String),
}

/// The provider's answer to an authorization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// The provider's id of the payment (a payment intent).
    pub payment_id: String,
    pub outcome: AuthorizationOutcome,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizationOutcome {
    /// The money is held on the customer's account.
    Authorized,
    /// The customer must confirm (3-D Secure, a bank app); the answer comes by webhook.
    ActionRequired,
    /// Refused, for this reason. Final.
    Declined(String),
}

/// A payment provider with idempotency keys, as real ones (Stripe, Adyen, ...) have. OrderFlow
/// uses the order id as the payment's key, so no retry can create a second payment, and each
/// call below has the effect of one call however often it is repeated.
#[async_trait]
pub trait PaymentGateway: Send + Sync + 'static {
    /// Creates the order's payment of `amount` (the same one again for the same order) and
    /// asks for its authorization.
    async fn authorize(
        &self,
        order_id: &str,
        amount: Money,
    ) -> Result<Authorization, ProviderError>;
    /// Takes the authorized amount in full.
    async fn capture(&self, payment_id: &str) -> Result<(), ProviderError>;
    /// Releases the authorization (or gives up on one still awaiting the customer). Refused
    /// once the payment is captured.
    async fn void(&self, payment_id: &str) -> Result<(), ProviderError>;
    /// Gives back all that was captured; `key` makes a repeated refund the same refund.
    /// Returns the refund's id.
    async fn refund(&self, payment_id: &str, key: &str) -> Result<String, ProviderError>;
    /// The payment the provider holds for `order_id`, if any: how a compensation finds an
    /// authorization whose step died before recording it.
    async fn payment_of(&self, order_id: &str) -> Result<Option<String>, ProviderError>;
    /// The payment as the provider's own books have it: what a webhook claims about it is
    /// checked against this before anything is done (`Rejected` if the provider does not know
    /// it).
    async fn lookup(&self, payment_id: &str) -> Result<IntentView, ProviderError>;
}

/// The in-process simulation: declines totals above a limit, optionally waits and optionally
/// fails transiently at a reproducible rate. Its ids are derived from the order id, which is
/// what makes it idempotent without storage of its own; it keeps no ledger, so it cannot
/// refuse a capture after a void the way a real provider (and `orderflow psp`) does.
#[derive(Debug)]
pub struct SimulatedPaymentGateway {
    decline_above: Money,
    delay: Duration,
    transient_failures: FailureSchedule,
}

impl SimulatedPaymentGateway {
    pub fn new(decline_above: Money, delay: Duration, transient_failure_rate: f64) -> Self {
        Self {
            decline_above,
            delay,
            transient_failures: FailureSchedule::new(transient_failure_rate),
        }
    }

    async fn wait(&self) {
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
    }
}

fn derived_id(prefix: &str, key: &str) -> String {
    format!(
        "{prefix}_{}",
        Uuid::new_v5(&Uuid::NAMESPACE_OID, format!("{prefix}:{key}").as_bytes()).simple()
    )
}

#[async_trait]
impl PaymentGateway for SimulatedPaymentGateway {
    async fn authorize(
        &self,
        order_id: &str,
        amount: Money,
    ) -> Result<Authorization, ProviderError> {
        self.wait().await;
        if self.transient_failures.fails(order_id) {
            return Err(ProviderError::Unavailable("simulated provider timeout".into()));
        }
        let outcome = if amount > self.decline_above {
            AuthorizationOutcome::Declined(format!(
                "amount {amount} exceeds the limit of {}",
                self.decline_above
            ))
        } else {
            AuthorizationOutcome::Authorized
        };
        Ok(Authorization { payment_id: derived_id("pay", order_id), outcome })
    }

    async fn capture(&self, _payment_id: &str) -> Result<(), ProviderError> {
        self.wait().await;
        Ok(())
    }

    async fn void(&self, _payment_id: &str) -> Result<(), ProviderError> {
        self.wait().await;
        Ok(())
    }

    async fn refund(&self, _payment_id: &str, key: &str) -> Result<String, ProviderError> {
        self.wait().await;
        Ok(derived_id("re", key))
    }

    /// None: the simulation keeps no ledger, so nothing is ever held that a record lacks.
    async fn payment_of(&self, _order_id: &str) -> Result<Option<String>, ProviderError> {
        Ok(None)
    }

    /// It keeps no books: nothing it could be asked about can be confirmed (and it sends no
    /// webhooks, so none should ever need to be).
    async fn lookup(&self, payment_id: &str) -> Result<IntentView, ProviderError> {
        Err(ProviderError::Rejected(format!(
            "the in-process simulation keeps no record of payment {payment_id}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::Decimal;

    fn money(cents: i64) -> Money {
        Money::parse("amount", Decimal::new(cents, 2)).unwrap()
    }

    #[tokio::test]
    async fn authorizing_the_same_order_twice_is_one_payment() {
        let gateway = SimulatedPaymentGateway::new(money(1_000_000), Duration::ZERO, 0.0);
        let first = gateway.authorize("order-a", money(99_999)).await.unwrap();
        assert_eq!(first.outcome, AuthorizationOutcome::Authorized);
        assert_eq!(first, gateway.authorize("order-a", money(99_999)).await.unwrap());
        assert_ne!(first, gateway.authorize("order-b", money(99_999)).await.unwrap());
    }

    #[tokio::test]
    async fn totals_above_the_limit_are_declined_and_the_limit_itself_is_not() {
        let gateway = SimulatedPaymentGateway::new(money(1_000_000), Duration::ZERO, 0.0);
        let above = gateway.authorize("a", money(1_000_001)).await.unwrap();
        assert!(matches!(above.outcome, AuthorizationOutcome::Declined(_)));
        let at = gateway.authorize("b", money(1_000_000)).await.unwrap();
        assert_eq!(at.outcome, AuthorizationOutcome::Authorized);
    }

    #[tokio::test]
    async fn transient_failures_happen_at_the_configured_rate() {
        let gateway = SimulatedPaymentGateway::new(money(1_000_000), Duration::ZERO, 1.0);
        assert!(matches!(
            gateway.authorize("a", money(1)).await,
            Err(ProviderError::Unavailable(_))
        ));
    }
}
