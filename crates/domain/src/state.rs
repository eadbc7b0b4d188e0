//! The life of one order as the workflow sees it: which step runs, what happened before, and
//! whether a cancellation can still be honoured. This is the object `GET /api/orders/state`
//! returns. Every timestamp is passed in by the caller (the workflow passes workflow time), so
//! the state stays deterministic under replay.

use crate::{CustomerId, ErrorCode, Money, NewOrder, OrderId, OrderStatus};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The steps of the saga, forward and compensating, in the names the state object shows.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::Display,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::EnumIter,
)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Step {
    CreateOrder,
    ReserveStock,
    /// Authorizes the payment (the money is held, not yet taken).
    ProcessPayment,
    /// Waits for the customer to confirm the payment (3-D Secure, a bank app); the answer
    /// comes by the provider's webhook. Not an activity: a durable wait in the workflow.
    AwaitPayment,
    /// Completes the order and captures the payment: the point of no return.
    ConfirmOrder,
    NotifyCustomer,
    /// Records that the order will not complete (failed or cancelled) before compensating.
    CloseOrder,
    /// Compensation: voids the payment's authorization, or refunds it if it was captured.
    RefundPayment,
    ReleaseStock,
}

impl Step {
    /// Its name, as the state object shows it and PostgreSQL stores it (also its activity's
    /// type name).
    pub fn as_str(&self) -> &'static str {
        self.into()
    }

    pub fn parse(text: &str) -> Option<Self> {
        text.parse().ok()
    }

    /// The order status while this step runs, if the step moves the order forward.
    fn status_while_running(&self) -> Option<OrderStatus> {
        match self {
            Self::ReserveStock => Some(OrderStatus::Validating),
            Self::ProcessPayment | Self::AwaitPayment => Some(OrderStatus::Payment),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Started,
    Completed,
    Failed,
}

/// One execution of one step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StepRecord {
    pub step: Step,
    pub status: StepStatus,
    pub started_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
    /// Attempts beyond the first.
    pub retry_count: u32,
}

/// Which message the customer is sent when the order ends.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::Display,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::EnumIter,
)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum NotificationKind {
    OrderConfirmed,
    OrderFailed,
    OrderCancelled,
}

impl NotificationKind {
    pub fn as_str(&self) -> &'static str {
        self.into()
    }

    pub fn parse(text: &str) -> Option<Self> {
        text.parse().ok()
    }
}

/// Why a cancellation request is refused (HTTP 409).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CancelRefusal {
    #[error("the order is already {0}")]
    AlreadyFinished(OrderStatus),
    #[error("the order has already failed and is being rolled back")]
    AlreadyFailing,
    #[error("too late to cancel: the order's confirmation has begun (its payment is being taken)")]
    PastPointOfNoReturn,
}

/// The workflow's view of an order. Field names follow the Go service's state object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OrderState {
    pub order_id: OrderId,
    pub customer_id: CustomerId,
    pub current_step: Step,
    pub status: OrderStatus,
    pub error_code: Option<ErrorCode>,
    pub error_message: Option<String>,
    /// Retries across all steps.
    pub retry_count: u32,
    /// A cancellation was requested and accepted (the status says whether it has finished).
    pub is_cancelled: bool,
    pub payment_id: Option<String>,
    pub started_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub step_history: Vec<StepRecord>,
    pub total_amount: Money,
    pub customer_notified: bool,
}

impl OrderState {
    pub fn new(order: &NewOrder, now: DateTime<Utc>) -> Self {
        Self {
            order_id: order.order_id,
            customer_id: order.customer_id.clone(),
            current_step: Step::CreateOrder,
            status: OrderStatus::Pending,
            error_code: None,
            error_message: None,
            retry_count: 0,
            is_cancelled: false,
            payment_id: None,
            started_at: now,
            completed_at: None,
            step_history: Vec::new(),
            total_amount: order.total,
            customer_notified: false,
        }
    }

    pub fn begin(&mut self, step: Step, now: DateTime<Utc>) {
        self.current_step = step;
        if let Some(status) = step.status_while_running() {
            self.status = status;
        }
        self.step_history.push(StepRecord {
            step,
            status: StepStatus::Started,
            started_at: now,
            completed_at: None,
            error: None,
            retry_count: 0,
        });
    }

    /// Ends the step begun last. `attempts` counts the first try too.
    pub fn end_step(&mut self, now: DateTime<Utc>, attempts: u32, error: Option<String>) {
        let retries = attempts.saturating_sub(1);
        self.retry_count += retries;
        if let Some(record) = self.step_history.last_mut() {
            record.status =
                if error.is_some() { StepStatus::Failed } else { StepStatus::Completed };
            record.completed_at = Some(now);
            record.retry_count = retries;
            record.error = error;
        }
    }

    /// The order can no longer complete; compensations follow.
    pub fn record_failure(&mut self, code: ErrorCode, message: impl Into<String>) {
        self.error_code = Some(code);
        self.error_message = Some(message.into());
    }

    /// Stock is sold and payment taken: the order is complete (the customer is told next).
    pub fn complete(&mut self, now: DateTime<Utc>) {
        self.status = OrderStatus::Completed;
        self.completed_at = Some(now);
    }

    /// Compensations are done: the order ends failed or cancelled.
    pub fn finish_unsuccessfully(&mut self, now: DateTime<Utc>) {
        self.status =
            if self.error_code.is_some() { OrderStatus::Failed } else { OrderStatus::Cancelled };
        self.completed_at = Some(now);
    }

    /// Whether a cancellation asked for now would be honoured, and if not, why.
    ///
    /// The point of no return is the start of `confirm_order`: from then on the stock is being
    /// moved to sold and the order will complete. Before it, a cancellation always takes effect
    /// at the next step boundary: stock is released and a payment already taken is refunded.
    pub fn cancel_refusal(&self) -> Option<CancelRefusal> {
        if self.status.is_terminal() {
            return Some(CancelRefusal::AlreadyFinished(self.status));
        }
        if self.error_code.is_some() {
            return Some(CancelRefusal::AlreadyFailing);
        }
        if self.step_history.iter().any(|r| r.step == Step::ConfirmOrder) {
            return Some(CancelRefusal::PastPointOfNoReturn);
        }
        None
    }

    /// Accepts a cancellation if it can still be honoured. Asking twice is not an error.
    pub fn request_cancel(&mut self) -> Result<(), CancelRefusal> {
        match self.cancel_refusal() {
            Some(refusal) => Err(refusal),
            None => {
                self.is_cancelled = true;
                Ok(())
            }
        }
    }

    /// The database recorded the customer's cancellation: the order will end cancelled, even if
    /// a step had already begun (it is fenced off in the database).
    pub fn note_cancellation_recorded(&mut self) {
        self.is_cancelled = true;
    }

    /// Closing the order found the cancellation recorded before a failure: it ends cancelled.
    pub fn settle_as_cancelled(&mut self) {
        self.is_cancelled = true;
        self.error_code = None;
        self.error_message = None;
    }

    /// Which message to send the customer now that the order has ended.
    pub fn notification(&self) -> NotificationKind {
        match self.status {
            OrderStatus::Completed => NotificationKind::OrderConfirmed,
            OrderStatus::Cancelled => NotificationKind::OrderCancelled,
            _ => NotificationKind::OrderFailed,
        }
    }

    /// The text of that message.
    pub fn customer_message(&self) -> String {
        let order = self.order_id;
        match self.notification() {
            NotificationKind::OrderConfirmed => {
                format!("Your order {order} is confirmed. Total charged: {}.", self.total_amount)
            }
            NotificationKind::OrderCancelled => format!(
                "Your order {order} is cancelled.{}",
                if self.payment_id.is_some() { " Your payment has been refunded." } else { "" }
            ),
            NotificationKind::OrderFailed => format!(
                "We could not complete your order {order}: {}. You have not been charged.",
                self.error_message.as_deref().unwrap_or("an error occurred")
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{OrderLine, ProductId, Quantity};
    use chrono::TimeZone;

    fn t(s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, s).unwrap()
    }

    fn state() -> OrderState {
        let order = NewOrder {
            order_id: OrderId::generate(),
            customer_id: CustomerId::parse("c-1").unwrap(),
            lines: vec![OrderLine {
                product_id: ProductId::parse("prod-001").unwrap(),
                name: "iPhone 15 Pro".into(),
                quantity: Quantity::parse(1).unwrap(),
                unit_price: Money::ZERO,
            }],
            total: Money::ZERO,
        };
        OrderState::new(&order, t(0))
    }

    #[test]
    fn steps_move_the_status_and_are_recorded() {
        let mut s = state();
        assert_eq!(s.status, OrderStatus::Pending);
        s.begin(Step::CreateOrder, t(1));
        s.end_step(t(2), 1, None);
        s.begin(Step::ReserveStock, t(2));
        assert_eq!(s.status, OrderStatus::Validating);
        s.end_step(t(3), 3, None);
        s.begin(Step::ProcessPayment, t(3));
        assert_eq!((s.status, s.current_step), (OrderStatus::Payment, Step::ProcessPayment));
        assert_eq!(s.retry_count, 2);
        assert_eq!(s.step_history[1].retry_count, 2);
        assert_eq!(s.step_history[1].status, StepStatus::Completed);
        assert_eq!(s.step_history[2].status, StepStatus::Started);
    }

    #[test]
    fn cancellation_is_honoured_until_confirmation_starts() {
        let mut s = state();
        s.begin(Step::ProcessPayment, t(1));
        s.end_step(t(2), 1, None);
        assert_eq!(s.request_cancel(), Ok(()));
        assert!(s.is_cancelled);
        assert_eq!(s.request_cancel(), Ok(()), "asking twice is fine");

        let mut s = state();
        s.begin(Step::ConfirmOrder, t(1));
        assert_eq!(s.request_cancel(), Err(CancelRefusal::PastPointOfNoReturn));
        assert!(!s.is_cancelled);
    }

    #[test]
    fn finished_or_failing_orders_cannot_be_cancelled() {
        let mut s = state();
        s.record_failure(ErrorCode::PaymentDeclined, "declined");
        assert_eq!(s.cancel_refusal(), Some(CancelRefusal::AlreadyFailing));
        s.finish_unsuccessfully(t(5));
        assert_eq!(s.status, OrderStatus::Failed);
        assert_eq!(s.cancel_refusal(), Some(CancelRefusal::AlreadyFinished(OrderStatus::Failed)));

        let mut s = state();
        s.request_cancel().unwrap();
        s.finish_unsuccessfully(t(5));
        assert_eq!(s.status, OrderStatus::Cancelled);
        assert_eq!(s.notification(), NotificationKind::OrderCancelled);
    }

    #[test]
    fn the_state_object_has_the_original_field_names() {
        let json = serde_json::to_value(state()).unwrap();
        for field in [
            "order_id",
            "customer_id",
            "current_step",
            "status",
            "error_code",
            "error_message",
            "retry_count",
            "is_cancelled",
            "payment_id",
            "started_at",
            "completed_at",
            "step_history",
            "total_amount",
            "customer_notified",
        ] {
            assert!(json.get(field).is_some(), "missing {field}");
        }
    }
}
