//! Timeouts and retry policies of each kind of step.
//!
//! Every activity has a start-to-close timeout (a hung call is abandoned and retried) and runs
//! with its own cancellation token, so a step already started always runs to its end: the
//! workflow decides at step boundaries whether to go on, which keeps "what happened" exact.

use std::time::Duration;
use temporalio_common::RetryPolicy;
use temporalio_sdk::{ActivityOptions, WorkflowCancellationToken};

/// Longest a single attempt of any step may take before it is abandoned and retried elsewhere
/// (a worker that died or froze mid-step). Every step is a few database statements or one
/// provider call; simulated delays are capped well below it.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(10);

/// Attempts at taking a payment before the order fails with `payment_failed`.
pub const PAYMENT_ATTEMPTS: u32 = 5;

/// Attempts at notifying the customer before giving up (the order is not affected).
pub const NOTIFICATION_ATTEMPTS: u32 = 3;

fn options(retry_policy: RetryPolicy) -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(STEP_TIMEOUT)
        .retry_policy(retry_policy)
        .cancellation_token(WorkflowCancellationToken::new())
        .build()
}

/// Database steps and compensations: retried until they succeed, because giving up would
/// leave stock or money in the wrong place. An outage makes orders wait, not fail.
pub fn until_done() -> ActivityOptions {
    options(
        RetryPolicy::builder()
            .initial_interval(Duration::from_millis(200))
            .maximum_interval(Duration::from_secs(10))
            .build(),
    )
}

/// Calls to the payment provider: a few tries with backoff for technical failures.
pub fn payment() -> ActivityOptions {
    options(
        RetryPolicy::builder()
            .initial_interval(Duration::from_millis(500))
            .maximum_interval(Duration::from_secs(5))
            .maximum_attempts(PAYMENT_ATTEMPTS)
            .build(),
    )
}

/// Notifying the customer: a few tries; a message that cannot be delivered is recorded.
pub fn notification() -> ActivityOptions {
    options(
        RetryPolicy::builder()
            .initial_interval(Duration::from_millis(500))
            .maximum_interval(Duration::from_secs(5))
            .maximum_attempts(NOTIFICATION_ATTEMPTS)
            .build(),
    )
}
