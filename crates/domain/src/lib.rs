//! OrderFlow's domain: the vocabulary and the rules of an order, with no I/O.
//!
//! Every type here is valid by construction: it is built with `parse` (or deserialised through
//! it), so the rest of the code never re-checks a customer id, a quantity or a price.

mod catalog;
mod ids;
mod money;
mod order;
mod payment;
#[cfg(feature = "sqlx")]
mod sql;
mod state;

pub use catalog::{CatalogProduct, OrderRejection, price_order};
pub use ids::{CustomerId, DatabaseId, IdempotencyKey, OrderId, ProductId, WorkflowId};
pub use money::Money;
pub use order::{
    ErrorCode, MAX_ITEMS_PER_ORDER, NewOrder, OrderDraft, OrderEnding, OrderLine, OrderStatus,
    Quantity, RequestedLine, TEMPORARY_PROBLEM,
};
pub use payment::PaymentStatus;
pub use state::{CancelRefusal, NotificationKind, OrderState, Step, StepRecord, StepStatus};

/// A value that failed validation: which field, and why, in words a client can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct InvalidField {
    pub field: String,
    pub reason: String,
}

impl InvalidField {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self { field: field.into(), reason: reason.into() }
    }

    /// The same error reported one level deeper, e.g. `quantity` inside `items[2]`.
    pub fn within(self, parent: impl std::fmt::Display) -> Self {
        Self { field: format!("{parent}.{}", self.field), ..self }
    }
}
