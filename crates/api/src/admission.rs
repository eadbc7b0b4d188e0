//! Admission control: how many orders this API process lets run at once.
//!
//! An order is *in flight* from the moment its request is admitted until it reaches a terminal
//! state or waits for its customer to confirm the payment (then it needs nothing but a timer),
//! or stops needing the engine's attention otherwise, see [`Admission::lease`]. Beyond the limit,
//! `POST /api/orders` is answered at once with 503 and `Retry-After`, before anything is written
//! or started: a burst is shed at the door instead of piling work on Temporal, PostgreSQL and the
//! workers until workflow tasks overrun their timeout and the engine redoes them (the collapse
//! this replaced; see docs/operations.md, "Admission").
//!
//! The limit adapts to what the system behind this process really finishes ([`Limit`]): an order
//! runs all its steps in its first workflow task, so an order in flight longer than the latency
//! target (a share of the workflow task timeout) means more was admitted than is being finished,
//! and the limit is cut; orders finishing in time let it grow back, up to `MAX_ORDERS_IN_FLIGHT`.
//! A slow machine, a debug build or a struggling database all get the limit they can carry.
//!
//! Completion is learned from PostgreSQL, where every order's terminal step writes
//! `completed_at` (and waiting for the customer sets `current_step` `await_payment`): a
//! sweeper asks every [`SWEEP_EVERY`] which of the orders in flight have finished. That works
//! whether the worker runs in this process or elsewhere.

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
    lease: Duration,
    state: Mutex<State>,
}

struct State {
    /// Requests admitted whose workflow is not started yet.
    reserved: usize,
    /// Started orders and when their requests were admitted.
    orders: HashMap<OrderId, Instant>,
    limit: Limit,
}

impl State {
    fn in_flight(&self) -> usize {
        self.reserved + self.orders.len()
    }
}

/// The adaptive limit: additive increase while orders finish within the target, multiplicative
/// decrease when one is in flight longer (the AIMD rule TCP uses for its congestion window).
#[derive(Debug, Clone)]
pub struct Limit {
    current: f64,
    floor: f64,
    ceiling: f64,
    target: Duration,
    last_cut: Option<Instant>,
}

impl Limit {
    /// Share of the limit kept on a cut.
    const CUT: f64 = 0.75;
    /// Growth per order finished in time while the limit was in use.
    const GROWTH: f64 = 0.5;

    /// Starts at `ceiling`; never goes below a tenth of it.
    pub fn new(ceiling: usize, target: Duration) -> Self {
        let ceiling = ceiling.max(1) as f64;
        Self { current: ceiling, floor: (ceiling / 10.0).max(1.0), ceiling, target, last_cut: None }
    }

    pub fn get(&self) -> usize {
        self.current as usize
    }

    pub fn target(&self) -> Duration {
        self.target
    }

    /// An order finished within the target while `in_flight` orders ran: if the limit was what
    /// held admissions back (at least half used), there is room for a little more.
    pub fn finished_in_time(&mut self, in_flight: usize) {
        if in_flight as f64 >= self.current / 2.0 {
            self.current = (self.current + Self::GROWTH).min(self.ceiling);
        }
    }

    /// An order has been in flight longer than the target: more is admitted than finishes in
    /// time. Cut, at most once per target period: the orders admitted before a cut are still
    /// finishing and say nothing about the new limit.
    pub fn overdue(&mut self, now: Instant) {
        if self.last_cut.is_some_and(|cut| now.duration_since(cut) < self.target) {
            return;
        }
        self.current = (self.current * Self::CUT).max(self.floor);
        self.last_cut = Some(now);
    }
}

/// Room for one order, held from admission until the order is tracked or the request fails.
#[must_use = "a ticket releases its room when dropped"]
pub struct Ticket {
    admission: Admission,
    /// When the request was admitted: an order's time in flight counts from here, so that a
    /// slow start (Temporal itself overloaded) holds admissions back as a slow step does.
    admitted: Instant,
    reserved: bool,
}

impl Admission {
    /// Orders in flight up to `limit` (which adapts, see [`Limit`]); an order stops counting
    /// once finished, or `lease` after its admission at the latest. Spawns the sweeper on the
    /// current runtime.
    pub fn new(store: Store, limit: Limit, lease: Duration) -> Self {
        let state = State { reserved: 0, orders: HashMap::new(), limit };
        let inner = Arc::new(Inner { lease, state: Mutex::new(state) });
        tokio::spawn(sweep(store, Arc::downgrade(&inner)));
        let admission = Self { inner };
        Self::publish(&admission.lock());
        admission
    }

    /// The limit right now.
    pub fn limit(&self) -> usize {
        self.lock().limit.get()
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
        if state.in_flight() >= state.limit.get() {
            drop(state);
            metrics::counter!("orderflow_orders_shed_total", "reason" => "in_flight_limit")
                .increment(1);
            return None;
        }
        state.reserved += 1;
        Self::publish(&state);
        Some(Ticket { admission: self.clone(), admitted: Instant::now(), reserved: true })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.state.lock().expect("admission lock poisoned")
    }

    fn publish(state: &State) {
        metrics::gauge!("orderflow_orders_in_flight").set(state.in_flight() as f64);
        metrics::gauge!("orderflow_orders_in_flight_limit").set(state.limit.get() as f64);
    }
}

impl Ticket {
    /// The order's workflow is started: it counts until it finishes.
    pub fn track(mut self, order: OrderId) {
        let mut state = self.admission.lock();
        state.reserved -= 1;
        state.orders.insert(order, self.admitted);
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
            let target = state.limit.target();
            if state.orders.values().any(|admitted| admitted.elapsed() > target) {
                state.limit.overdue(Instant::now());
            }
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
                let in_flight = state.in_flight();
                let target = state.limit.target();
                if state.orders.remove(&id).is_some_and(|admitted| admitted.elapsed() <= target) {
                    state.limit.finished_in_time(in_flight);
                }
            }
            Admission::publish(&state);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TARGET: Duration = Duration::from_secs(2);

    #[test]
    fn an_overdue_order_cuts_the_limit_once_per_target_period_down_to_a_floor() {
        let mut limit = Limit::new(200, TARGET);
        let start = Instant::now();
        limit.overdue(start);
        assert_eq!(limit.get(), 150);
        limit.overdue(start + Duration::from_millis(500));
        assert_eq!(limit.get(), 150, "the same cohort of orders cuts once");
        for i in 1..40 {
            limit.overdue(start + TARGET * i);
        }
        assert_eq!(limit.get(), 20, "never below a tenth of the ceiling");
    }

    #[test]
    fn orders_finishing_in_time_grow_the_limit_back_only_while_it_is_in_use() {
        let mut limit = Limit::new(100, TARGET);
        limit.overdue(Instant::now());
        assert_eq!(limit.get(), 75);
        limit.finished_in_time(10);
        assert_eq!(limit.get(), 75, "an idle process learns nothing about its capacity");
        for _ in 0..100 {
            limit.finished_in_time(70);
        }
        assert_eq!(limit.get(), 100, "up to the ceiling, not beyond");
    }
}
