use crate::chance::FailureSchedule;
use async_trait::async_trait;
use orderflow_domain::Money;
use std::time::Duration;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChargeError {
    /// The provider refused the charge. Final: retrying will not help.
    #[error("payment declined: {0}")]
    Declined(String),
    /// A technical failure; the same charge may succeed if tried again.
    #[error("payment provider unavailable: {0}")]
    Unavailable(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("refund failed: {0}")]
pub struct RefundError(pub String);

/// A payment provider with idempotency keys, as real ones (Stripe, Adyen, ...) have: charging
/// or refunding the same key twice has the effect of doing it once and returns the same id.
/// OrderFlow uses the order id as the key, so no retry can charge an order twice.
#[async_trait]
pub trait PaymentGateway: Send + Sync + 'static {
    /// Charges `amount`; returns the provider's payment id.
    async fn charge(&self, idempotency_key: &str, amount: Money) -> Result<String, ChargeError>;
    /// Refunds the charge made with `idempotency_key`; returns the refund id. Refunding a key
    /// that was never charged succeeds and moves no money.
    async fn refund(&self, idempotency_key: &str) -> Result<String, RefundError>;
}

/// The simulated provider: declines totals above a limit, optionally waits and optionally
/// fails transiently at a reproducible rate. Its ids are derived from the idempotency key,
/// which is what makes it idempotent without storage of its own.
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
}

fn derived_id(prefix: &str, key: &str) -> String {
    format!(
        "{prefix}_{}",
        Uuid::new_v5(&Uuid::NAMESPACE_OID, format!("{prefix}:{key}").as_bytes()).simple()
    )
}

#[async_trait]
impl PaymentGateway for SimulatedPaymentGateway {
    async fn charge(&self, idempotency_key: &str, amount: Money) -> Result<String, ChargeError> {
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        if self.transient_failures.fails(idempotency_key) {
            return Err(ChargeError::Unavailable("simulated provider timeout".into()));
        }
        if amount > self.decline_above {
            return Err(ChargeError::Declined(format!(
                "amount {amount} exceeds the limit of {}",
                self.decline_above
            )));
        }
        Ok(derived_id("pay", idempotency_key))
    }

    async fn refund(&self, idempotency_key: &str) -> Result<String, RefundError> {
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        Ok(derived_id("re", idempotency_key))
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
    async fn charging_the_same_key_twice_is_one_payment() {
        let gateway = SimulatedPaymentGateway::new(money(1_000_000), Duration::ZERO, 0.0);
        let first = gateway.charge("order-a", money(99_999)).await.unwrap();
        assert_eq!(first, gateway.charge("order-a", money(99_999)).await.unwrap());
        assert_ne!(first, gateway.charge("order-b", money(99_999)).await.unwrap());
    }

    #[tokio::test]
    async fn totals_above_the_limit_are_declined_and_the_limit_itself_is_not() {
        let gateway = SimulatedPaymentGateway::new(money(1_000_000), Duration::ZERO, 0.0);
        assert!(matches!(
            gateway.charge("a", money(1_000_001)).await,
            Err(ChargeError::Declined(_))
        ));
        assert!(gateway.charge("b", money(1_000_000)).await.is_ok());
    }

    #[tokio::test]
    async fn transient_failures_happen_at_the_configured_rate() {
        let gateway = SimulatedPaymentGateway::new(money(1_000_000), Duration::ZERO, 1.0);
        assert!(matches!(gateway.charge("a", money(1)).await, Err(ChargeError::Unavailable(_))));
    }
}
