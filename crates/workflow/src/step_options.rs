//! How each kind of step is run: its retry policy, with one timeout and cancellation rule for
//! all of them.
//!
//! Every step has a start-to-close timeout (a hung call is abandoned and retried) and runs with
//! its own cancellation token, so a step already started always runs to its end: the workflow
//! decides at step boundaries whether to go on, which keeps "what happened" exact.

use std::time::Duration;
use temporalio_common::RetryPolicy;
use temporalio_sdk::{LocalActivityOptions, WorkflowCancellationToken};

/// Longest a single attempt of any step may take before it is abandoned and retried elsewhere
/// (a worker that died or froze mid-step). Every step is a few database statements or one
/// provider call; simulated delays are capped well below it.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(10);

/// Attempts at taking a payment before the order fails with `payment_failed`.
pub const PAYMENT_ATTEMPTS: u32 = 5;

/// Attempts at notifying the customer before giving up (the order is not affected).
pub const NOTIFICATION_ATTEMPTS: u32 = 3;

#[derive(Debug, Clone)]
pub struct StepPolicy {
    retry: RetryPolicy,
}

impl StepPolicy {
    /// Database steps and compensations: retried until they succeed, because giving up would
    /// leave stock or money in the wrong place. An outage makes orders wait, not fail.
    pub fn until_done() -> Self {
        Self::backoff(Duration::from_millis(200), Duration::from_secs(10), 0)
    }

    /// Calls to the payment provider: a few tries with backoff for technical failures.
    pub fn payment() -> Self {
        Self::backoff(Duration::from_millis(500), Duration::from_secs(5), PAYMENT_ATTEMPTS)
    }

    /// Notifying the customer: a few tries; a message that cannot be delivered is recorded.
    pub fn notification() -> Self {
        Self::backoff(Duration::from_millis(500), Duration::from_secs(5), NOTIFICATION_ATTEMPTS)
    }

    fn backoff(first: Duration, longest: Duration, attempts: u32) -> Self {
        let retry = RetryPolicy::builder()
            .initial_interval(first)
            .maximum_interval(longest)
            .maximum_attempts(attempts)
            .build();
        Self { retry }
    }

    /// 0 means unlimited.
    pub fn max_attempts(&self) -> u32 {
        self.retry.maximum_attempts()
    }

    /// As a local activity: run by the worker that runs the workflow, recorded in its history
    /// when the workflow task completes. No server round trip per step; if the worker dies the
    /// step runs again elsewhere, which every step tolerates (they are idempotent).
    pub fn local(&self) -> LocalActivityOptions {
        LocalActivityOptions::builder()
            .start_to_close_timeout(STEP_TIMEOUT)
            .retry_policy(self.retry.clone())
            .cancellation_token(WorkflowCancellationToken::new())
            .build()
    }
}
