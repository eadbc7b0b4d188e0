//! The outside world the saga talks to: a payment gateway and a customer notifier.
//!
//! Both are traits so that a real provider can be dropped in. The simulations here are what
//! OrderFlow ships with (the original simulated them too): deterministic by default, with
//! delays and failure rates set from the environment so that a person can watch an order move
//! or a test can make a step fail on purpose.

mod chance;
pub use chance::{FailureSchedule, draw};
mod notifier;
mod payment;
pub mod payment_provider;
pub mod webhook_signature;

pub use notifier::{Notifier, NotifyError, SimulatedNotifier};
pub use payment::{
    Authorization, AuthorizationOutcome, PaymentGateway, ProviderError, SimulatedPaymentGateway,
};
