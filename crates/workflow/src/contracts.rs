//! What every step shares: the workflow's input, a step's input with its order's database,
//! how a step reports its end, and how it fails. What each step takes and returns is in its
//! module (`steps`).

use orderflow_domain::{DatabaseId, ErrorCode, NewOrder};
use serde::{Deserialize, Serialize};

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

/// Outputs that say on which attempt they were produced.
pub trait Attempted {
    fn attempt(&self) -> u32;
}

impl Attempted for StepReport {
    fn attempt(&self) -> u32 {
        self.attempt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
