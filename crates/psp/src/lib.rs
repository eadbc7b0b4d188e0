//! A simulated payment service provider that OrderFlow reaches over HTTP, as it would reach a
//! real one (docs/payments.md): payment intents that are authorized, confirmed by the customer
//! when required, captured, voided and refunded, kept in a ledger of its own. Deterministic:
//! whether a payment needs the customer's action, or a call meets an outage, is a function of
//! the order id and the knobs.

mod api;
mod ledger;
pub mod payment_intent;
mod webhooks;

pub use api::router;
pub use ledger::{Delivery, Intent, Ledger, LedgerError, Outbox};
pub use webhooks::{Webhooks, run as run_webhooks};

use orderflow_domain::Money;

/// The simulator's knobs (environment variables of `orderflow psp`).
#[derive(Debug, Clone)]
pub struct PspConfig {
    /// `PAYMENT_DECLINE_ABOVE`: amounts above this are declined.
    pub decline_above: Money,
    /// `PSP_ACTION_REQUIRED_RATE` (0–1): share of payments that need the customer's action.
    pub action_required_rate: f64,
    /// `PSP_OUTAGE_RATE` (0–1): share of calls answered 503 before anything is done.
    pub outage_rate: f64,
    /// `PSP_CONFIRM_DELAY_MS`: how long the customer takes to answer.
    pub confirm_delay: std::time::Duration,
    /// `PSP_CONFIRM_OUTCOME`: what the customer answers.
    pub confirm_outcome: ConfirmOutcome,
    /// `PSP_AUTHORIZATION_TTL_MS`: how long an authorization can be captured, as a card
    /// network's authorizations expire (days, in life); `None`: never. Capturing one older than
    /// that is refused and the authorization is voided.
    pub authorization_ttl: Option<std::time::Duration>,
}

/// What the simulated customer does with a payment that needs their confirmation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfirmOutcome {
    Succeed,
    Fail,
    /// Never answers: the merchant's timeout decides.
    Never,
}
