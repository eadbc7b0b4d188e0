//! Where an order's payment is, as OrderFlow records it. The provider's ledger is the other side
//! (docs/payments.md): what OrderFlow believes is checked against it.

use serde::{Deserialize, Serialize};

/// The status of an order's payment in OrderFlow's record (`payments.status`, the order
/// detail's `payment.status`).
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
pub enum PaymentStatus {
    /// The customer must confirm (3-D Secure, a bank app); the answer comes by webhook.
    RequiresAction,
    /// The money is held on the customer's account.
    Authorized,
    Captured,
    /// The authorization was released; no money moved.
    Voided,
    /// Captured, then given back.
    Refunded,
    /// Declined, or the customer did not confirm. Workers older than payment intents wrote
    /// `declined`, which reads as this.
    #[serde(alias = "declined")]
    #[strum(to_string = "failed", serialize = "declined")]
    Failed,
}

impl PaymentStatus {
    pub fn as_str(&self) -> &'static str {
        self.into()
    }

    pub fn parse(text: &str) -> Option<Self> {
        text.parse().ok()
    }

    /// Money is held for the order and not yet decided: to be captured or voided.
    pub fn is_open(&self) -> bool {
        matches!(self, Self::RequiresAction | Self::Authorized)
    }

    /// Nothing is held or taken, and nothing will be: declined, voided, or given back.
    pub fn is_settled_without_money(&self) -> bool {
        matches!(self, Self::Failed | Self::Voided | Self::Refunded)
    }
}

#[cfg(test)]
mod tests {
    use super::PaymentStatus;
    use strum::IntoEnumIterator;

    #[test]
    fn every_status_reads_back_and_the_legacy_word_is_a_failure() {
        for status in PaymentStatus::iter() {
            assert_eq!(PaymentStatus::parse(status.as_str()), Some(status));
            let json = serde_json::to_string(&status).unwrap();
            assert_eq!(serde_json::from_str::<PaymentStatus>(&json).unwrap(), status);
        }
        assert_eq!(PaymentStatus::Failed.as_str(), "failed");
        assert_eq!(PaymentStatus::parse("declined"), Some(PaymentStatus::Failed));
        assert_eq!(
            serde_json::from_str::<PaymentStatus>("\"declined\"").unwrap(),
            PaymentStatus::Failed
        );
        assert_eq!(PaymentStatus::parse("capture"), None);
    }
}
