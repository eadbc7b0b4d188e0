//! Steps that keep failing are made visible, not left to retry silently: once a step has failed
//! `after_attempts` times in a row it is *stuck*. That is logged once at error level (the
//! attempts before it at warn, the ones after at debug), counted in the gauge
//! `orderflow_steps_stuck{step}` and recorded for the operators' list (`stuck_steps`, best
//! effort: the database may be what is broken). When the step succeeds at last, all three are
//! cleared; nothing else needs doing, since the step keeps retrying on its own (durable backoff,
//! see `orderflow_workflow`'s step options).
//!
//! A stuck step fails again at least every `LONGEST_BACKOFF` (5 min). One that has not failed
//! for twice that is no longer stuck, even if nobody saw it succeed (its order moved to
//! another worker, which restarted the attempts): the gauge forgets it, and the operators' list
//! hides it (the store applies the same rule).

use orderflow_domain::OrderId;
use orderflow_store::Store;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use crate::step_options::STUCK_UNTIL_QUIET_FOR as FORGET_AFTER;

pub struct StuckSteps {
    store: Store,
    after_attempts: u32,
    /// The stuck steps this process counts in the gauge, with their last failure.
    counted: Arc<Mutex<HashMap<(OrderId, &'static str), Instant>>>,
}

impl StuckSteps {
    /// Spawns a task that forgets steps that stopped failing (see the module docs).
    pub fn new(store: Store, after_attempts: u32) -> Self {
        let counted = Arc::default();
        tokio::spawn(forget_recovered(Arc::downgrade(&counted)));
        Self { store, after_attempts: after_attempts.max(1), counted }
    }

    /// A retryable failure of `step` on its `attempt`-th attempt.
    pub async fn failed(
        &self,
        order: OrderId,
        step: &'static str,
        attempt: u32,
        error: &anyhow::Error,
    ) {
        if attempt < self.after_attempts {
            tracing::warn!(attempt, error = format!("{error:#}"), "step failed; retrying");
            return;
        }
        if self.count(order, step) {
            tracing::error!(
                attempt,
                error = format!("{error:#}"),
                "step stuck: it keeps failing and is retried with backoff (up to 5 min apart) \
                 until the cause is fixed; see GET /api/admin/stuck-orders"
            );
        } else {
            tracing::debug!(attempt, error = format!("{error:#}"), "stuck step failed again");
        }
        if let Err(e) = self.store.flag_stuck(order, step, attempt, &format!("{error:#}")).await {
            tracing::debug!(error = %e, "could not record the stuck step");
        }
    }

    /// `step` succeeded on its `attempt`-th attempt.
    pub async fn succeeded(&self, order: OrderId, step: &'static str, attempt: u32) {
        let was_counted = self.uncount(order, step);
        // Possibly flagged, by this process or another (which may have died since): a step that
        // succeeds at once cannot have been stuck since its last flag was made.
        if was_counted || attempt >= self.after_attempts {
            tracing::info!(attempt, "stuck step succeeded; the order goes on");
            if let Err(e) = self.store.clear_stuck(order, step).await {
                tracing::warn!(error = %e, "could not clear the stuck step's record");
            }
        }
    }

    /// Counts the step in the gauge unless it is counted already; true if it was not.
    fn count(&self, order: OrderId, step: &'static str) -> bool {
        let new = self.lock().insert((order, step), Instant::now()).is_none();
        if new {
            metrics::gauge!("orderflow_steps_stuck", "step" => step).increment(1.0);
        }
        new
    }

    fn uncount(&self, order: OrderId, step: &'static str) -> bool {
        let was = self.lock().remove(&(order, step)).is_some();
        if was {
            metrics::gauge!("orderflow_steps_stuck", "step" => step).decrement(1.0);
        }
        was
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(OrderId, &'static str), Instant>> {
        self.counted.lock().expect("stuck steps lock poisoned")
    }
}

async fn forget_recovered(counted: Weak<Mutex<HashMap<(OrderId, &'static str), Instant>>>) {
    loop {
        tokio::time::sleep(Duration::from_secs(60)).await;
        let Some(counted) = counted.upgrade() else { return };
        counted.lock().expect("stuck steps lock poisoned").retain(|(_, step), last_failure| {
            let keep = last_failure.elapsed() < FORGET_AFTER;
            if !keep {
                metrics::gauge!("orderflow_steps_stuck", "step" => *step).decrement(1.0);
            }
            keep
        });
    }
}
