//! Warnings that anyone can cause (forged or contradicted webhooks, unknown orders) are logged
//! at most [`PER_MINUTE`] a minute per kind across the process: an attacker's flood of
//! requests must not become a flood of log lines (disk, log shipping, the operators'
//! attention). Each kind has its own budget, so that a flood of unsigned junk, which needs no
//! secret, cannot hide the warnings of correctly signed but contradicted events, which point at
//! a leaked secret. What is not logged is counted, and the next line logged says how many were
//! left out. Metrics count every one of them.

use governor::{DefaultDirectRateLimiter, Quota};
use std::num::NonZeroU32;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// Warning lines a minute of each kind, at most, with bursts of as many.
pub const PER_MINUTE: u32 = 10;

/// The kinds of warnings, each with its own budget.
#[derive(Debug, Clone, Copy)]
pub enum Warning {
    /// A webhook refused: no or a wrong signature, not an event.
    Refused = 0,
    /// A signed event for an order this service does not know.
    UnknownOrder = 1,
    /// A signed event the provider's own record contradicts.
    Contradicted = 2,
}

struct Budget {
    limiter: DefaultDirectRateLimiter,
    left_out: AtomicU64,
}

static BUDGETS: LazyLock<[Budget; 3]> = LazyLock::new(|| {
    std::array::from_fn(|_| Budget {
        limiter: DefaultDirectRateLimiter::direct(Quota::per_minute(
            NonZeroU32::new(PER_MINUTE).expect("not zero"),
        )),
        left_out: AtomicU64::new(0),
    })
});

/// Logs `message` at WARN, unless its kind's budget is spent (then counts it). Returns whether
/// it was logged.
pub fn warn_throttled(kind: Warning, message: &str) -> bool {
    let budget = &BUDGETS[kind as usize];
    if budget.limiter.check().is_err() {
        budget.left_out.fetch_add(1, Ordering::Relaxed);
        return false;
    }
    match budget.left_out.swap(0, Ordering::Relaxed) {
        0 => tracing::warn!("{message}"),
        left_out => tracing::warn!(left_out, "{message} ({left_out} similar warnings left out)"),
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_is_logged_a_few_lines_at_a_time_and_does_not_silence_another_kind() {
        let logged =
            (0..1_000).filter(|i| warn_throttled(Warning::Refused, &format!("forged {i}"))).count();
        assert!(logged <= PER_MINUTE as usize, "{logged} lines for 1,000 warnings");
        assert!(BUDGETS[Warning::Refused as usize].left_out.load(Ordering::Relaxed) >= 990);
        assert!(warn_throttled(Warning::Contradicted, "a lie, signed"), "its own budget");
    }
}
