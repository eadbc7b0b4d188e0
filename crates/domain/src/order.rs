//! An order: what the client asked for ([`OrderDraft`]), and what the shop accepted
//! ([`NewOrder`], priced from the catalog). Also the status vocabulary of the Go service.

use crate::{CustomerId, InvalidField, Money, OrderId, ProductId};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// More lines than this is not a shopping cart but a mistake or an attack.
pub const MAX_ITEMS_PER_ORDER: usize = 50;

/// Units of one product in one order line: 1..=[`Quantity::MAX`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "u32")]
pub struct Quantity(u32);

impl Quantity {
    pub const MAX: u32 = 1_000;

    pub fn parse(value: i64) -> Result<Self, InvalidField> {
        match u32::try_from(value) {
            Ok(q) if (1..=Self::MAX).contains(&q) => Ok(Self(q)),
            _ => Err(InvalidField::new(
                "quantity",
                format!("must be a whole number from 1 to {}", Self::MAX),
            )),
        }
    }

    pub fn get(&self) -> u32 {
        self.0
    }
}

impl TryFrom<i64> for Quantity {
    type Error = InvalidField;
    fn try_from(value: i64) -> Result<Self, Self::Error> {
        Self::parse(value)
    }
}

impl From<Quantity> for u32 {
    fn from(q: Quantity) -> u32 {
        q.0
    }
}

/// One line as the client sent it, before it is checked against the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RequestedLine {
    pub product_id: ProductId,
    pub quantity: Quantity,
    /// The unit price the client believes in. The catalog decides; a mismatch is refused.
    pub price: Money,
}

impl RequestedLine {
    pub fn parse(product_id: String, quantity: i64, price: Decimal) -> Result<Self, InvalidField> {
        Ok(Self {
            product_id: ProductId::parse(product_id)?,
            quantity: Quantity::parse(quantity)?,
            price: Money::parse("price", price)?,
        })
    }
}

/// A syntactically valid order request: a customer and 1..=50 lines, each product once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrderDraft {
    pub customer_id: CustomerId,
    pub lines: Vec<RequestedLine>,
}

impl OrderDraft {
    pub fn parse(customer_id: String, lines: Vec<RequestedLine>) -> Result<Self, InvalidField> {
        let customer_id = CustomerId::parse(customer_id)?;
        if lines.is_empty() {
            return Err(InvalidField::new("items", "must contain at least one item"));
        }
        if lines.len() > MAX_ITEMS_PER_ORDER {
            return Err(InvalidField::new(
                "items",
                format!("must contain at most {MAX_ITEMS_PER_ORDER} items"),
            ));
        }
        // One line per product keeps reservations simple (one row per order and product) and
        // a client that sends the same product twice has almost certainly made a mistake.
        for (i, line) in lines.iter().enumerate() {
            if lines[..i].iter().any(|earlier| earlier.product_id == line.product_id) {
                return Err(InvalidField::new(
                    format!("items[{i}].product_id"),
                    format!("{} appears more than once; use quantity instead", line.product_id),
                ));
            }
        }
        Ok(Self { customer_id, lines })
    }

    pub fn product_ids(&self) -> Vec<ProductId> {
        self.lines.iter().map(|l| l.product_id.clone()).collect()
    }
}

/// One accepted order line, priced by the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLine {
    pub product_id: ProductId,
    pub name: String,
    pub quantity: Quantity,
    pub unit_price: Money,
}

impl OrderLine {
    /// Price × quantity, or `None` above `Money::MAX`.
    pub fn total(&self) -> Option<Money> {
        self.unit_price.checked_mul(self.quantity.get())
    }
}

/// An order the shop has accepted for processing: the workflow's input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewOrder {
    pub order_id: OrderId,
    pub customer_id: CustomerId,
    pub lines: Vec<OrderLine>,
    pub total: Money,
}

/// Where an order is. The six values of the service OrderFlow replaced, unchanged.
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
pub enum OrderStatus {
    /// Accepted, not yet looked at.
    Pending,
    /// Stock is being checked and reserved.
    Validating,
    /// Stock is held; payment is being taken (or has been, and the order is being confirmed).
    Payment,
    Completed,
    Failed,
    Cancelled,
}

impl OrderStatus {
    /// Its name, as the API shows it and PostgreSQL stores it.
    pub fn as_str(&self) -> &'static str {
        self.into()
    }

    pub fn parse(text: &str) -> Option<Self> {
        text.parse().ok()
    }

    /// Nothing will ever change this order again.
    pub fn is_terminal(&self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled)
    }

    /// A sentence for the `message` field of the status endpoint.
    pub fn describe(&self) -> &'static str {
        match self {
            Self::Pending => "Order received; waiting to be processed",
            Self::Validating => "Checking and reserving stock",
            Self::Payment => "Stock reserved; taking payment",
            Self::Completed => "Order completed",
            Self::Failed => "Order failed",
            Self::Cancelled => "Order cancelled",
        }
    }
}

/// Why an order failed, as a stable machine-readable code.
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
pub enum ErrorCode {
    /// Some product did not have enough units left.
    InsufficientStock,
    /// The payment provider refused the charge. Not retried.
    PaymentDeclined,
    /// The payment provider kept failing for technical reasons until retries ran out, or
    /// refused for good to capture a payment being confirmed.
    PaymentFailed,
    /// The customer did not confirm the payment in time (`PAYMENT_CONFIRMATION_TIMEOUT_MS`):
    /// the authorization was voided and the stock released.
    PaymentTimeout,
    /// A step failed in a way it should not (a bug, or data changed by hand). The order is
    /// rolled back like any other failure; the message says what happened.
    InternalError,
}

impl ErrorCode {
    pub fn as_str(&self) -> &'static str {
        self.into()
    }

    pub fn parse(text: &str) -> Option<Self> {
        text.parse().ok()
    }

    /// A business outcome, whose own message (the shortage, the decline reason) is for the
    /// customer. The others are technical: their details go to the logs and the operator view,
    /// and the customer reads [`ErrorCode::customer_message`].
    pub fn is_business(&self) -> bool {
        matches!(self, Self::InsufficientStock | Self::PaymentDeclined | Self::PaymentTimeout)
    }

    /// What a customer reads about a technical failure.
    pub fn customer_message(&self) -> &'static str {
        match self {
            Self::PaymentFailed => {
                "the payment could not be completed because of a technical problem"
            }
            _ => TEMPORARY_PROBLEM,
        }
    }
}

/// What a customer reads about a step that failed for a technical reason.
pub const TEMPORARY_PROBLEM: &str = "a temporary problem on our side; we are on it";

/// How an order that will not complete ends, once its compensations have run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "ending")]
pub enum OrderEnding {
    Failed { code: ErrorCode, message: String },
    Cancelled,
}

impl OrderEnding {
    pub fn status(&self) -> OrderStatus {
        match self {
            Self::Failed { .. } => OrderStatus::Failed,
            Self::Cancelled => OrderStatus::Cancelled,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(product: &str, quantity: i64) -> RequestedLine {
        RequestedLine::parse(product.into(), quantity, Decimal::new(99999, 2)).unwrap()
    }

    #[test]
    fn quantity_bounds() {
        assert!(Quantity::parse(0).is_err());
        assert!(Quantity::parse(-3).is_err());
        assert!(Quantity::parse(1).is_ok());
        assert!(Quantity::parse(1_000).is_ok());
        assert!(Quantity::parse(1_001).is_err());
        assert!(Quantity::parse(i64::MAX).is_err());
    }

    #[test]
    fn a_draft_needs_items_and_a_customer() {
        assert_eq!(OrderDraft::parse("c".into(), vec![]).unwrap_err().field, "items");
        assert_eq!(
            OrderDraft::parse("".into(), vec![line("p", 1)]).unwrap_err().field,
            "customer_id"
        );
        assert!(OrderDraft::parse("c".into(), vec![line("p", 1)]).is_ok());
    }

    #[test]
    fn a_draft_has_at_most_fifty_lines_each_product_once() {
        let many = (0..=MAX_ITEMS_PER_ORDER).map(|i| line(&format!("p{i}"), 1)).collect();
        assert_eq!(OrderDraft::parse("c".into(), many).unwrap_err().field, "items");
        let twice = vec![line("p", 1), line("q", 1), line("p", 2)];
        assert_eq!(OrderDraft::parse("c".into(), twice).unwrap_err().field, "items[2].product_id");
    }

    #[test]
    fn statuses_round_trip_through_text() {
        for s in <OrderStatus as strum::IntoEnumIterator>::iter() {
            assert_eq!(OrderStatus::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{s}\""));
        }
        assert!(OrderStatus::Completed.is_terminal());
        assert!(!OrderStatus::Payment.is_terminal());
    }
}
