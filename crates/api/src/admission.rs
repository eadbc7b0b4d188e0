//! Admission control: how many orders this API process lets run at once.
//!
//! An order is *in flight* from the moment its request is admitted until it reaches a terminal
//! state (or stops needing the engine's attention, see [`Admission::lease`]). Beyond the limit,
//! `POST /api/orders` is answered at once with 503 and `Retry-After`, before anything is written
//! or started: a burst is shed at the door instead of piling work on Temporal, PostgreSQL and the
//! workers until workflow tasks overrun their timeout and the engine redoes them (the collapse
//! this replaced; see README "Overload").
//!
//! Completion is learned from PostgreSQL, where every order's terminal step writes
//! `completed_at`: a sweeper asks every [`SWEEP_EVERY`] which of the orders in flight have
//! finished. That works whether the worker runs in this process or elsewhere.

use orderflow_domain::OrderId;
use orderflow_store::Store;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// How often the orders in flight are checked for completion.
pub const SWEEP_EVERY: Duration = Duration::from_millis(50);

/// The process's order budget. Cheap to clone.
#[derive(Clone)]
pub struct Admission {
    inner: Arc<Inner>,
}

struct Inner {
    limit: usize,
    lease: Duration,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Requests admitted whose workflow is not started yet.
    reserved: usize,
    /// Started orders and when they were admitted.
    orders: HashMap<OrderId, Instant>,
}

impl State {
    fn in_flight(&self) -> usize {
        self.reserved + self.orders.len()
    }
}

/// Room for one order, held from admission until the order is tracked or the request fails.
#[must_use = "a ticket releases its room when dropped"]
pub struct Ticket {
    admission: Admission,
    reserved: bool,
}

impl Admission {
    /// At most `limit` orders in flight; an order stops counting once finished, or `lease`
    /// after its admission at the latest. Spawns the sweeper on the current runtime.
    pub fn new(store: Store, limit: usize, lease: Duration) -> Self {
        let inner = Arc::new(Inner { limit, lease, state: Mutex::default() });
        metrics::gauge!("orderflow_orders_in_flight_limit").set(limit as f64);
        tokio::spawn(sweep(store, Arc::downgrade(&inner)));
        Self { inner }
    }

    pub fn limit(&self) -> usize {
        self.inner.limit
    }

    /// How long an order counts at most: one that has not finished by then is waiting on
    /// something (an outage, a stuck step) that more admissions would not make worse.
    pub fn lease(&self) -> Duration {
        self.inner.lease
    }

    pub fn in_flight(&self) -> usize {
        self.lock().in_flight()
    }

    /// Room for one more order, or `None` when the process is full.
    pub fn try_admit(&self) -> Option<Ticket> {
        let mut state = self.lock();
        if state.in_flight() >= self.inner.limit {
            drop(state);
            metrics::counter!("orderflow_orders_shed_total", "reason" => "in_flight_limit")
                .increment(1);
            return None;
        }
        state.reserved += 1;
        Self::publish(&state);
        Some(Ticket { admission: self.clone(), reserved: true })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.state.lock().expect("admission lock poisoned")
    }

    fn publish(state: &State) {
        metrics::gauge!("orderflow_orders_in_flight").set(state.in_flight() as f64);
    }
}

impl Ticket {
    /// The order's workflow is started: it counts until it finishes.
    pub fn track(mut self, order: OrderId) {
        let mut state = self.admission.lock();
        state.reserved -= 1;
        state.orders.insert(order, Instant::now());
        self.reserved = false;
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if self.reserved {
            let mut state = self.admission.lock();
            state.reserved -= 1;
            Admission::publish(&state);
        }
    }
}

/// Releases finished orders (and expired leases) until the admission is dropped.
async fn sweep(store: Store, inner: Weak<Inner>) {
    loop {
        tokio::time::sleep(SWEEP_EVERY).await;
        let Some(inner) = inner.upgrade() else { return };
        let admission = Admission { inner };
        let ids: Vec<OrderId> = {
            let mut state = admission.lock();
            let lease = admission.inner.lease;
            state.orders.retain(|_, admitted| admitted.elapsed() < lease);
            Admission::publish(&state);
            state.orders.keys().copied().collect()
        };
        if ids.is_empty() {
            continue;
        }
        // A failed read (PostgreSQL restarting) keeps the orders counted until the next sweep.
        if let Ok(finished) = store.finished_orders(&ids).await {
            let mut state = admission.lock();
            for id in finished {
                state.orders.remove(&id);
            }
            Admission::publish(&state);
        }
    }
}
