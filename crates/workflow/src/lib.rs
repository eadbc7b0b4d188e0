//! The order saga as a Temporal workflow.
//!
//! This crate holds only deterministic code: the workflow ([`OrderWorkflow`]) and the contracts
//! of the activities it calls ([`OrderActivities`]). The activities themselves, which do the
//! I/O, live in `orderflow-activities`; so a change to SQL never rebuilds or risks the
//! workflow, and the replay tests here guard the workflow against non-deterministic changes.

mod contracts;
mod order_workflow;
mod step_options;

pub use contracts::{
    Attempted, CancelAccepted, CancelDecision, CloseReport, FailureType, InDatabase,
    NotificationRequest, OrderActivities, OrderEnd, OrderInput, PaymentAnswer, PaymentOutcome,
    PaymentReceipt, PaymentRequest, StepReport, activity,
};
pub use order_workflow::OrderWorkflow;
pub use step_options::{
    LOCAL_RETRY_THRESHOLD, LONGEST_BACKOFF, PAYMENT_ATTEMPTS, STEP_TIMEOUT, STUCK_UNTIL_QUIET_FOR,
};
