//! What each activity takes and returns. The workflow calls these; `orderflow-activities`
//! implements them (checked at compile time against these signatures).

use chrono::{DateTime, Utc};
use orderflow_domain::{
    CustomerId, DatabaseId, ErrorCode, Money, NewOrder, NotificationKind, OrderEnding, OrderId,
    OrderStatus,
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
/// database refuses the step before touching anything ([`FailureType::ForeignDatabase`]),
/// and the workflow then fails its task, so that the order's work goes back to Temporal for a
/// worker of the right deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InDatabase<T> {
    pub database: Option<DatabaseId>,
    pub input: T,
}

/// Why a step failed for good: the type of its non-retryable application failure, which is
/// how the activities tell the workflow what happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureType {
    /// The order cannot go on, for this reason (`insufficient_stock`, `payment_declined`, ...).
    Order(ErrorCode),
    /// Confirmation refused: the customer's cancellation was recorded first.
    OrderCancelled,
    /// A charge completed for an order closed meanwhile; it was refunded at once.
    OrderClosed,
    /// The step belongs to an order of another deployment's database; nothing was touched.
    ForeignDatabase,
}

impl FailureType {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Order(code) => code.as_str(),
            Self::OrderCancelled => "order_cancelled",
            Self::OrderClosed => "order_closed",
            Self::ForeignDatabase => "foreign_database",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::OrderCancelled, Self::OrderClosed, Self::ForeignDatabase]
            .into_iter()
            .find(|t| t.as_str() == text)
            .or_else(|| ErrorCode::parse(text).map(Self::Order))
    }

    /// Whether the customer may read the failure's own message (the shortage, the decline
    /// reason); otherwise it is technical and they read a generic sentence.
    pub fn is_for_the_customer(&self) -> bool {
        match self {
            Self::Order(code) => code.is_business(),
            Self::OrderCancelled => true,
            Self::OrderClosed | Self::ForeignDatabase => false,
        }
    }
}

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

/// The payment's authorization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentReceipt {
    pub payment_id: String,
    pub attempt: u32,
    /// Set when the customer must confirm the payment: the order waits for the provider's
    /// answer (a [`PaymentAnswer`] signal) until then, when the stock hold expires. Absent in
    /// the receipts of orders started before payments were authorized and captured apart
    /// (their histories replay with no wait).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub awaiting_customer_until: Option<DateTime<Utc>>,
}

/// The provider's answer to a payment that needed the customer's confirmation, handed to the
/// order's workflow by the webhook endpoint (signal `payment_answered`). Repeated or late
/// answers are harmless: the workflow takes the first one for its own payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentAnswer {
    /// The provider's event that carried it.
    pub event_id: String,
    pub payment_id: String,
    pub outcome: PaymentOutcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum PaymentOutcome {
    Authorized,
    Failed { reason: String },
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
    /// Its confirmation had begun: the payment is being captured (the point of no return).
    Confirming,
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

    /// Authorizes the order's payment once, whatever is retried; says whether the customer
    /// must confirm it. Fails with `payment_declined`, or `payment_failed` when the provider
    /// stays unreachable.
    #[activity(name = "process_payment")]
    pub fn process_payment(_: InDatabase<PaymentRequest>) -> Result<PaymentReceipt, ActivityError> {
        unimplemented!()
    }

    /// Moves held stock to sold, completes the order and captures its payment. Fails with
    /// `order_cancelled` if the customer's cancellation was recorded first.
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

    /// Compensation: voids the order's authorization, or refunds its payment if it was
    /// captured. Nothing if there is none.
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

#[cfg(test)]
mod tests {
    use super::*;
    use orderflow_domain::Step;
    use temporalio_common::ActivityDefinition;

    /// The activity types Temporal records are the step names the state object shows: one
    /// vocabulary (the macro attribute wants literals, so this test ties the two together).
    #[test]
    fn activity_types_are_the_step_names() {
        use OrderActivities as A;
        let named = [
            (A::create_order.name().to_owned(), Step::CreateOrder),
            (A::reserve_stock.name().to_owned(), Step::ReserveStock),
            (A::process_payment.name().to_owned(), Step::ProcessPayment),
            (A::confirm_order.name().to_owned(), Step::ConfirmOrder),
            (A::notify_customer.name().to_owned(), Step::NotifyCustomer),
            (A::close_order.name().to_owned(), Step::CloseOrder),
            (A::refund_payment.name().to_owned(), Step::RefundPayment),
            (A::release_stock.name().to_owned(), Step::ReleaseStock),
        ];
        for (activity, step) in named {
            assert_eq!(activity, step.as_str());
        }
    }

    #[test]
    fn failure_types_read_back_as_written() {
        let all = [
            FailureType::Order(ErrorCode::InsufficientStock),
            FailureType::Order(ErrorCode::PaymentDeclined),
            FailureType::Order(ErrorCode::PaymentFailed),
            FailureType::Order(ErrorCode::InternalError),
            FailureType::OrderCancelled,
            FailureType::OrderClosed,
            FailureType::ForeignDatabase,
        ];
        for failure in all {
            assert_eq!(FailureType::parse(failure.as_str()), Some(failure));
        }
        assert_eq!(FailureType::parse("activity_failed"), None);
    }
}
