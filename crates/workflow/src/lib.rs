//! The order saga: its workflow ([`OrderWorkflow`]) and its steps, one module each
//! ([`steps`]): a step's contract, its activity (the I/O, over PostgreSQL and the providers),
//! the workflow's call to it and its compensation live together, as a business area's workflow
//! and activities do in Temporal's reference applications. The workflow code itself stays
//! deterministic (the replay tests guard it); only the activities do I/O.

mod contracts;
mod order_workflow;
mod saga;
mod step;
mod step_options;
pub mod steps;

pub use contracts::{Attempted, FailureType, InDatabase, OrderInput, StepReport};
pub use order_workflow::OrderWorkflow;
pub use step_options::{
    LOCAL_RETRY_THRESHOLD, LONGEST_BACKOFF, PAYMENT_ATTEMPTS, STEP_TIMEOUT, STUCK_UNTIL_QUIET_FOR,
};
pub use steps::activity;
pub use steps::await_payment::{PaymentAnswer, PaymentOutcome};
pub use steps::cancel::{CancelAccepted, CancelDecision};
pub use steps::close_order::{CloseReport, OrderEnd};
pub use steps::notify_customer::NotificationRequest;
pub use steps::process_payment::{PaymentReceipt, PaymentRequest};
pub use steps::{StepDeps, StuckSteps, prime_metrics, register};
