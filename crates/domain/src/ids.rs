//! Identifiers. Client-supplied ones are short printable tokens; order ids are UUIDv7
//! (time-ordered, so "newest first" is an index scan) and their workflow id is derived from
//! them, which is what makes workflow ids unique where the original's
//! `order-processing-{customer}-{unix seconds}` collided.

use crate::InvalidField;
use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

/// Checks a client-supplied token: 1..=max characters from a conservative set, so that ids
/// are safe in URLs, logs and SQL literals alike.
fn check_token(field: &str, value: &str, max: usize) -> Result<(), InvalidField> {
    if value.is_empty() {
        return Err(InvalidField::new(field, "must not be empty"));
    }
    if value.chars().count() > max {
        return Err(InvalidField::new(field, format!("must be at most {max} characters")));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '@');
    if !value.chars().all(allowed) {
        return Err(InvalidField::new(field, "may contain only letters, digits and - _ . : @"));
    }
    Ok(())
}

macro_rules! token_id {
    ($(#[$doc:meta])* $name:ident, $field:literal, $max:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(value_type = String))]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn parse(value: impl Into<String>) -> Result<Self, InvalidField> {
                let value = value.into();
                check_token($field, &value, $max)?;
                Ok(Self(value))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidField;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(value)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

token_id!(
    /// Who placed the order.
    CustomerId, "customer_id", 64
);
token_id!(
    /// A catalog product, e.g. `prod-001`.
    ProductId, "product_id", 64
);

/// The client's `Idempotency-Key` header: any visible ASCII, 1..=255 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub const MAX_LEN: usize = 255;

    pub fn parse(value: impl Into<String>) -> Result<Self, InvalidField> {
        let value = value.into();
        if value.is_empty() || value.len() > Self::MAX_LEN {
            return Err(InvalidField::new(
                "Idempotency-Key",
                format!("must be 1 to {} characters", Self::MAX_LEN),
            ));
        }
        if !value.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(InvalidField::new(
                "Idempotency-Key",
                "must be visible ASCII characters without spaces",
            ));
        }
        Ok(Self(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An order's own id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(value_type = String, format = Uuid))]
#[serde(transparent)]
pub struct OrderId(Uuid);

impl OrderId {
    /// A fresh id. Time-ordered (UUIDv7), so ids sort by creation.
    pub fn generate() -> Self {
        Self(Uuid::now_v7())
    }

    pub fn from_uuid(uuid: Uuid) -> Self {
        Self(uuid)
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }

    /// The id of the workflow that processes this order. One order, one workflow, ever.
    pub fn workflow_id(&self) -> WorkflowId {
        WorkflowId(*self)
    }
}

impl fmt::Display for OrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The identity of one OrderFlow database (one deployment's data), created with its schema.
/// Orders carry it through their workflow, so that a worker connected to another database
/// refuses them instead of running them against the wrong data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DatabaseId(Uuid);

impl DatabaseId {
    pub fn from_uuid(uuid: Uuid) -> Self {
        Self(uuid)
    }
}

impl fmt::Display for DatabaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// `order-{order_id}`: the Temporal workflow id of an order. Parsing one gives back the order id,
/// so a workflow id from a client can be looked up without asking Temporal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WorkflowId(OrderId);

impl WorkflowId {
    const PREFIX: &'static str = "order-";

    /// `None` when the text is not the workflow id of any order this service could have made.
    pub fn parse(text: &str) -> Option<Self> {
        let uuid = text.strip_prefix(Self::PREFIX)?;
        // Only the canonical hyphenated lowercase form, so that one order has one workflow id.
        let parsed = Uuid::try_parse(uuid).ok()?;
        (parsed.hyphenated().to_string() == uuid).then_some(Self(OrderId(parsed)))
    }

    pub fn order_id(&self) -> OrderId {
        self.0
    }
}

impl fmt::Display for WorkflowId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", Self::PREFIX, self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workflow_ids_round_trip_and_differ_per_order() {
        let a = OrderId::generate();
        let b = OrderId::generate();
        assert_ne!(a.workflow_id().to_string(), b.workflow_id().to_string());
        let text = a.workflow_id().to_string();
        assert!(text.starts_with("order-"));
        assert_eq!(WorkflowId::parse(&text).unwrap().order_id(), a);
    }

    #[test]
    fn foreign_workflow_ids_are_not_orders() {
        for text in [
            "",
            "order-",
            "order-processing-customer-001-1234567890",
            "order-not-a-uuid",
            "ORDER-0190b4b4-2d4c-7d4e-8a9b-0123456789ab",
            "order-0190B4B4-2D4C-7D4E-8A9B-0123456789AB",
            "order-0190b4b42d4c7d4e8a9b0123456789ab",
        ] {
            assert!(WorkflowId::parse(text).is_none(), "{text:?} parsed");
        }
    }

    #[test]
    fn customer_ids_are_short_printable_tokens() {
        assert!(CustomerId::parse("customer-001").is_ok());
        assert!(CustomerId::parse("alice@example.com").is_ok());
        assert_eq!(CustomerId::parse("").unwrap_err().field, "customer_id");
        assert!(CustomerId::parse("a b").is_err());
        assert!(CustomerId::parse("x".repeat(65)).is_err());
        assert!(CustomerId::parse("'; DROP TABLE orders; --").is_err());
    }

    #[test]
    fn deserialising_a_customer_id_validates_it() {
        assert!(serde_json::from_str::<CustomerId>("\"ok-1\"").is_ok());
        assert!(serde_json::from_str::<CustomerId>("\"\"").is_err());
    }

    #[test]
    fn idempotency_keys_are_visible_ascii() {
        assert!(IdempotencyKey::parse("3f2a-retry-1").is_ok());
        assert!(IdempotencyKey::parse("").is_err());
        assert!(IdempotencyKey::parse("has space").is_err());
        assert!(IdempotencyKey::parse("k".repeat(256)).is_err());
        assert!(IdempotencyKey::parse("ключ").is_err());
    }
}
