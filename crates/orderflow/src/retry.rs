//! Waiting for a dependency that is still starting.

use backon::{ExponentialBuilder, Retryable};
use std::future::Future;
use std::time::Duration;

/// Calls `attempt` until it succeeds (backing off from 200 ms to 5 s), saying what it waits
/// for: a dependency that is still starting should delay start-up, not crash it.
pub async fn retry<T, E, F, Fut>(what: &str, attempt: F) -> T
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let backoff = ExponentialBuilder::new()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(Duration::from_secs(5))
        .without_max_times();
    match attempt.retry(backoff).notify(|e, _| tracing::warn!("waiting for {what}: {e}")).await {
        Ok(value) => value,
        Err(_) => unreachable!("retried without a limit"),
    }
}
