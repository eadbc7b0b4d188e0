//! What each activity takes and returns. The workflow calls these; `orderflow-activities`
//! implements them (checked at compile time against these signatures).

use orderflow_domain::{
    CustomerId, DatabaseId, Money, NewOrder, NotificationKind, OrderEnding, OrderId, OrderStatus,
};
use serde::{Deserialize, Serialize};
use temporalio_macros::activity_definitions;
use temporalio_sdk::activities::ActivityError;

/// The workflow's input: the order, and the database it belongs to (`None` for orders placed
/// before databases had an identity). Flattened, so an order's JSON is still a valid input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderInput {
    #[serde(flatten)]
    pub order: NewOrder,
    #[serde(default)]
    pub database: Option<DatabaseId>,
}

/// A step's input together with the database of its order. A worker connected to another
/// database refuses the step before touching anything (the error type [`FOREIGN_DATABASE`]),
/// and the workflow then fails its task, so that the order's work goes back to Temporal for a
/// worker of the right deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InDatabase<T> {
    pub database: Option<DatabaseId>,
    pub input: T,
}

/// The error type of a step refused by a worker of another database.
pub const FOREIGN_DATABASE: &str = "foreign_database";

/// The error type of a confirmation refused because the customer's cancellation came first.
pub const ORDER_CANCELLED: &str = "order_cancelled";

/// A step finished; `attempt` is the attempt that finished it (1 = first try).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepReport {
    pub attempt: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentRequest {
    pub order_id: OrderId,
    pub amount: Money,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentReceipt {
    pub payment_id: String,
    pub attempt: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationRequest {
    pub order_id: OrderId,
    pub customer_id: CustomerId,
    pub kind: NotificationKind,
    pub message: String,
}

/// How an order that will not complete ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderEnd {
    pub order_id: OrderId,
    pub ending: OrderEnding,
}

/// How a closed order actually ended: `cancelled` if the customer's cancellation was recorded
/// first, or even `completed` if it had been confirmed by a step the workflow lost track of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloseReport {
    pub status: OrderStatus,
    pub attempt: u32,
}

/// The database's answer to a cancellation request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CancelDecision {
    Accepted,
    /// The order had already ended, with this status.
    TooLate(OrderStatus),
}

/// The answer to an accepted cancellation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelAccepted {
    /// The status at the moment of acceptance; the order ends `cancelled` shortly after.
    pub status: OrderStatus,
}

/// Outputs that say on which attempt they were produced.
pub trait Attempted {
    fn attempt(&self) -> u32;
}

impl Attempted for StepReport {
    fn attempt(&self) -> u32 {
        self.attempt
    }
}

impl Attempted for CloseReport {
    fn attempt(&self) -> u32 {
        self.attempt
    }
}

impl Attempted for PaymentReceipt {
    fn attempt(&self) -> u32 {
        self.attempt
    }
}

/// The saga's activities. Business failures are non-retryable application failures whose
/// type is an [`orderflow_domain::ErrorCode`] (`insufficient_stock`, `payment_declined`);
/// anything else is retried.
pub struct OrderActivities;

#[activity_definitions]
impl OrderActivities {
    /// Writes the order row and its lines (status `pending`). Idempotent.
    #[activity(name = "create_order")]
    pub fn create_order(_: InDatabase<NewOrder>) -> Result<StepReport, ActivityError> {
        unimplemented!()
    }

    /// Holds stock for every line, all or nothing. Fails with `insufficient_stock`.
    #[activity(name = "reserve_stock")]
    pub fn reserve_stock(_: InDatabase<OrderId>) -> Result<StepReport, ActivityError> {
        unimplemented!()
    }

    /// Charges the order once, whatever is retried. Fails with `payment_declined`.
    #[activity(name = "process_payment")]
    pub fn process_payment(_: InDatabase<PaymentRequest>) -> Result<PaymentReceipt, ActivityError> {
        unimplemented!()
    }

    /// Moves held stock to sold and completes the order. Fails with `order_cancelled` if the
    /// customer's cancellation was recorded first.
    #[activity(name = "confirm_order")]
    pub fn confirm_order(_: InDatabase<OrderId>) -> Result<StepReport, ActivityError> {
        unimplemented!()
    }

    /// Tells the customer how the order ended. Never sends the same message twice.
    #[activity(name = "notify_customer")]
    pub fn notify_customer(
        _: InDatabase<NotificationRequest>,
    ) -> Result<StepReport, ActivityError> {
        unimplemented!()
    }

    /// Records that the order ends failed or cancelled, before its compensations. From then on
    /// no step can hold stock for it or capture a payment for it, even one still running on a
    /// worker that lost track of it (see `orderflow_store` for the fences).
    #[activity(name = "close_order")]
    pub fn close_order(_: InDatabase<OrderEnd>) -> Result<CloseReport, ActivityError> {
        unimplemented!()
    }

    /// Records a customer's cancellation in the database, where it races confirmation under
    /// the order's row lock: the answer is final.
    #[activity(name = "request_cancellation")]
    pub fn request_cancellation(_: InDatabase<OrderId>) -> Result<CancelDecision, ActivityError> {
        unimplemented!()
    }

    /// Compensation: refunds the order's payment if one was captured.
    #[activity(name = "refund_payment")]
    pub fn refund_payment(_: InDatabase<OrderId>) -> Result<StepReport, ActivityError> {
        unimplemented!()
    }

    /// Compensation: releases held stock and ends the order failed or cancelled.
    #[activity(name = "release_stock")]
    pub fn release_stock(_: InDatabase<OrderEnd>) -> Result<StepReport, ActivityError> {
        unimplemented!()
    }
}

/// The activities' marker types, for `#[activity(definition = ...)]` in the implementing crate.
pub mod activity {
    pub use super::order_activities::*;
}
