use crate::chance::FailureSchedule;
use async_trait::async_trait;
use orderflow_domain::CustomerId;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("notification not delivered: {0}")]
pub struct NotifyError(pub String);

/// Tells a customer something. Delivery may fail; the caller retries within limits.
#[async_trait]
pub trait Notifier: Send + Sync + 'static {
    /// The channel messages go out on, e.g. `email`.
    fn channel(&self) -> &'static str;
    /// Delivers `message`. `dedup_key` identifies the message, for providers that deduplicate.
    async fn send(
        &self,
        customer: &CustomerId,
        dedup_key: &str,
        message: &str,
    ) -> Result<(), NotifyError>;
}

/// Writes the message to the log instead of sending an e-mail, after an optional delay and
/// with an optional, reproducible failure rate.
#[derive(Debug)]
pub struct SimulatedNotifier {
    delay: Duration,
    failures: FailureSchedule,
}

impl SimulatedNotifier {
    pub fn new(delay: Duration, failure_rate: f64) -> Self {
        Self { delay, failures: FailureSchedule::new(failure_rate) }
    }
}

#[async_trait]
impl Notifier for SimulatedNotifier {
    fn channel(&self) -> &'static str {
        "email"
    }

    async fn send(
        &self,
        customer: &CustomerId,
        dedup_key: &str,
        message: &str,
    ) -> Result<(), NotifyError> {
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        if self.failures.fails(dedup_key) {
            return Err(NotifyError("simulated mail server failure".into()));
        }
        tracing::info!(customer = %customer, %message, "notification sent (simulated e-mail)");
        Ok(())
    }
}
