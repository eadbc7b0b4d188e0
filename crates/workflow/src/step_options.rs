//! How each kind of step is run: its retry policy, with one timeout and cancellation rule for
//! all of them.
//!
//! Every step has a start-to-close timeout (a hung call is abandoned and retried) and runs with
//! its own cancellation token, so a step already started always runs to its end: the workflow
//! decides at step boundaries whether to go on, which keeps "what happened" exact.
//!
//! A step that keeps failing (a broken migration, a revoked grant, an outage) first retries
//! quickly inside its workflow task, then waits between attempts on durable timers: retries
//! whose backoff exceeds [`LOCAL_RETRY_THRESHOLD`] are scheduled as timers by the SDK, so the
//! order costs nothing while it waits (no open workflow task, no heartbeats) and its history
//! grows by a few events per attempt, at most one attempt every [`LONGEST_BACKOFF`].

use std::time::Duration;
use temporalio_common::RetryPolicy;
use temporalio_sdk::{LocalActivityOptions, WorkflowCancellationToken};

/// Longest a single attempt of any step may take before it is abandoned and retried elsewhere
/// (a worker that died or froze mid-step). Every step is a few database statements or one
/// provider call; simulated delays are capped well below it.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(10);

/// Attempts at taking a payment before the order fails with `payment_failed`, counted by the
/// payment step itself for the provider's failures only (a database outage in the middle of a
/// payment makes the order wait, not fail).
pub const PAYMENT_ATTEMPTS: u32 = 5;

/// Retries with a shorter backoff run within the workflow task; longer ones wait on a timer.
pub const LOCAL_RETRY_THRESHOLD: Duration = Duration::from_secs(10);

/// The longest wait between two attempts of a step that keeps failing.
pub const LONGEST_BACKOFF: Duration = Duration::from_secs(300);

/// A step that keeps failing fails again at least this often; one that has not failed for this
/// long is no longer stuck (see `steps::StuckSteps`).
pub const STUCK_UNTIL_QUIET_FOR: Duration = Duration::from_secs(2 * LONGEST_BACKOFF.as_secs());

/// How long a step may keep failing before it gives up: never, in practice (ten years). The
/// SDK's default for local activities is 100 s, after which a compensation would have been
/// abandoned with stock or money in the wrong place.
const RETRY_FOREVER: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// Attempts at notifying the customer before giving up (the order is not affected).
pub const NOTIFICATION_ATTEMPTS: u32 = 3;

#[derive(Debug, Clone)]
pub struct StepPolicy {
    retry: RetryPolicy,
}

impl StepPolicy {
    /// Database steps, payments and compensations: retried until they succeed, because giving
    /// up would leave stock or money in the wrong place. An outage makes orders wait, not fail:
    /// 200 ms doubling (six quick attempts within about 13 s), then durable waits up to 5 min.
    /// The payment step itself fails the order after [`PAYMENT_ATTEMPTS`] provider failures.
    pub fn until_done() -> Self {
        Self::backoff(Duration::from_millis(200), LONGEST_BACKOFF, 0)
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
            .schedule_to_close_timeout(RETRY_FOREVER)
            .timer_backoff_threshold(LOCAL_RETRY_THRESHOLD)
            .retry_policy(self.retry.clone())
            .cancellation_token(WorkflowCancellationToken::new())
            .build()
    }
}
