//! The order's steps, one module each: what the workflow sends and gets back, the activity that
//! does the work (idempotent: Temporal may run it more than once), the workflow's call to it,
//! and its compensation, side by side. Adding a step is a module here, a line in [`register`]
//! and one in the saga (`order_workflow.rs`): see docs/architecture.md, "Adding a step".

pub mod await_payment;
pub mod cancel;
pub mod close_order;
pub mod confirm_order;
pub mod create_order;
pub mod notify_customer;
pub mod process_payment;
pub mod reserve_stock;
mod run;
mod stuck;

pub use stuck::StuckSteps;

use orderflow_domain::DatabaseId;
use orderflow_providers::{Notifier, PaymentGateway};
use orderflow_store::Store;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;
use temporalio_sdk::WorkerOptions;

/// What the steps' activities need. Register them all with [`register`].
pub struct StepDeps {
    pub store: Store,
    /// The identity of `store`'s database: steps of orders of another database are refused.
    pub database: DatabaseId,
    pub payments: Arc<dyn PaymentGateway>,
    pub notifier: Arc<dyn Notifier>,
    /// Simulated time spent checking stock (INVENTORY_DELAY_MS), to watch an order move.
    pub inventory_delay: Duration,
    /// How long stock is held for an order whose payment awaits the customer, which is how
    /// long it waits for them (PAYMENT_CONFIRMATION_TIMEOUT_MS).
    pub payment_hold: Duration,
    pub stuck: StuckSteps,
    /// Steps this worker has run (the worker is replaced after a number of them).
    pub steps_run: Arc<AtomicU64>,
}

/// Registers every step's activities on a worker.
pub fn register(options: &mut WorkerOptions, deps: Arc<StepDeps>) {
    options
        .register_activities(create_order::CreateOrder(deps.clone()))
        .register_activities(reserve_stock::ReserveStock(deps.clone()))
        .register_activities(process_payment::ProcessPayment(deps.clone()))
        .register_activities(confirm_order::ConfirmOrder(deps.clone()))
        .register_activities(notify_customer::NotifyCustomer(deps.clone()))
        .register_activities(close_order::CloseOrder(deps.clone()))
        .register_activities(cancel::Cancel(deps));
}

/// Exports, at 0, the counters of events that may never happen in a process's life but that an
/// alert watches: a series that appears only after its first event could not tell "none yet"
/// from "not exported", and an `increase()` over it misses the first.
pub fn prime_metrics() {
    metrics::counter!("orderflow_capture_refusals_total").increment(0);
}

/// Every activity's marker type, for a test double that implements the same activities
/// (`#[activity(definition = orderflow_workflow::activity::ReserveStock)]`).
pub mod activity {
    pub use super::cancel::markers::*;
    pub use super::close_order::markers::*;
    pub use super::confirm_order::markers::*;
    pub use super::create_order::markers::*;
    pub use super::notify_customer::markers::*;
    pub use super::process_payment::markers::*;
    pub use super::reserve_stock::markers::*;
}

#[cfg(test)]
mod tests {
    use super::*;
    use orderflow_domain::Step;

    /// The activity types Temporal records are the step names the state object shows: one
    /// vocabulary (the macro attribute wants literals, so this test ties the two together).
    #[test]
    fn activity_types_are_the_step_names() {
        let named = [
            (create_order::CreateOrder::create_order.name(), Step::CreateOrder),
            (reserve_stock::ReserveStock::reserve_stock.name(), Step::ReserveStock),
            (reserve_stock::ReserveStock::release_stock.name(), Step::ReleaseStock),
            (process_payment::ProcessPayment::process_payment.name(), Step::ProcessPayment),
            (process_payment::ProcessPayment::refund_payment.name(), Step::RefundPayment),
            (confirm_order::ConfirmOrder::confirm_order.name(), Step::ConfirmOrder),
            (notify_customer::NotifyCustomer::notify_customer.name(), Step::NotifyCustomer),
            (close_order::CloseOrder::close_order.name(), Step::CloseOrder),
        ];
        for (activity, step) in named {
            assert_eq!(activity, step.as_str());
        }
        assert_eq!(cancel::Cancel::request_cancellation.name(), cancel::CANCELLATION);
    }
}
