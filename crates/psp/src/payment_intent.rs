//! A payment intent as the provider keeps it (docs/payments.md): money authorized first,
//! captured later, voided or refunded, and the customer's confirmation in between when the
//! payment requires it. The simulated provider's own rules (OrderFlow's client reads the
//! provider's answers with types of its own, `orderflow_providers::payment_provider`, held to
//! these by a contract test): the ledger entry, and the only place the rules live: every call to the provider is one [`Command`] applied here, and a call that the
//! state does not allow is refused (the provider answers 409) rather than half-applied.
//! Repeating a command that already took effect changes nothing, which with the idempotency
//! key is what lets a client retry any call.

use orderflow_domain::Money;
use serde::{Deserialize, Serialize};

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    strum::EnumIter,
    strum::EnumString,
    strum::IntoStaticStr,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum IntentStatus {
    /// Created; nothing asked of the customer's bank yet.
    RequiresAuthorization,
    /// The customer must confirm (3-D Secure, a bank app); the outcome comes by webhook.
    RequiresAction,
    /// The money is held on the customer's account.
    Authorized,
    Captured,
    /// The authorization was released; no money moved.
    Voided,
    /// Captured, then given back in full (partial refunds keep it `captured`).
    Refunded,
    /// Declined, or the customer did not confirm.
    Failed,
}

impl IntentStatus {
    pub fn as_str(&self) -> &'static str {
        self.into()
    }

    pub fn parse(text: &str) -> Option<Self> {
        text.parse().ok()
    }
}

/// A call to the provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Ask the bank: it declines (`Err(reason)`), authorizes, or wants the customer's action.
    Authorize(Result<AuthorizeAnswer, String>),
    /// The customer confirmed (`true`) or refused / gave up (`false`).
    Confirm(bool),
    Capture,
    Void,
    /// Refund `None` = all that is left, or that much.
    Refund(Option<Money>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthorizeAnswer {
    Authorized,
    ActionRequired,
}

/// Why a command is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("a payment intent that is {0:?} cannot be {1}")]
    WrongState(IntentStatus, &'static str),
    #[error("refund of {asked} exceeds the {left} left to refund")]
    RefundTooLarge { asked: Money, left: Money },
    #[error("a refund must be of more than 0")]
    EmptyRefund,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentIntent {
    pub status: IntentStatus,
    pub amount: Money,
    pub captured: Money,
    pub refunded: Money,
    pub failure_reason: Option<String>,
}

impl PaymentIntent {
    pub fn new(amount: Money) -> Self {
        Self {
            status: IntentStatus::RequiresAuthorization,
            amount,
            captured: Money::ZERO,
            refunded: Money::ZERO,
            failure_reason: None,
        }
    }

    /// Applies `command`; returns whether it changed anything (a repeat does not).
    pub fn apply(&mut self, command: Command) -> Result<bool, Refusal> {
        use IntentStatus::*;
        let refuse = |doing| Err(Refusal::WrongState(self.status, doing));
        match (command, self.status) {
            (Command::Authorize(answer), RequiresAuthorization) => {
                self.status = match answer {
                    Ok(AuthorizeAnswer::Authorized) => Authorized,
                    Ok(AuthorizeAnswer::ActionRequired) => RequiresAction,
                    Err(reason) => {
                        self.failure_reason = Some(reason);
                        Failed
                    }
                };
                Ok(true)
            }
            (Command::Authorize(_), RequiresAction | Authorized | Failed) => Ok(false),
            (Command::Authorize(_), _) => refuse("authorized"),
            (Command::Confirm(confirmed), RequiresAction) => {
                self.status = if confirmed { Authorized } else { Failed };
                if !confirmed {
                    self.failure_reason = Some("the customer did not confirm the payment".into());
                }
                Ok(true)
            }
            // The same answer again (a retried call, a duplicate webhook) changes nothing.
            (Command::Confirm(true), Authorized | Captured | Refunded) => Ok(false),
            (Command::Confirm(false), Failed) => Ok(false),
            (Command::Confirm(_), _) => refuse("confirmed"),
            (Command::Capture, Authorized) => {
                self.status = Captured;
                self.captured = self.amount;
                Ok(true)
            }
            (Command::Capture, Captured | Refunded) => Ok(false),
            (Command::Capture, _) => refuse("captured"),
            (Command::Void, RequiresAuthorization | RequiresAction | Authorized) => {
                self.status = Voided;
                Ok(true)
            }
            (Command::Void, Voided | Failed) => Ok(false),
            (Command::Void, _) => refuse("voided"),
            (Command::Refund(asked), Captured) => self.refund(asked),
            (Command::Refund(None), Refunded) => Ok(false),
            (Command::Refund(_), _) => refuse("refunded"),
        }
    }

    /// What is left to refund.
    pub fn refundable(&self) -> Money {
        Money::parse("refundable", self.captured.amount() - self.refunded.amount())
            .unwrap_or(Money::ZERO)
    }

    fn refund(&mut self, asked: Option<Money>) -> Result<bool, Refusal> {
        let left = self.refundable();
        let asked = asked.unwrap_or(left);
        if asked.amount().is_zero() && left.amount() > asked.amount() {
            return Err(Refusal::EmptyRefund);
        }
        if asked.amount() > left.amount() {
            return Err(Refusal::RefundTooLarge { asked, left });
        }
        // Within `captured` (just checked), so below `Money::MAX`.
        self.refunded = self.refunded.checked_add(asked).unwrap_or(self.captured);
        if self.refunded == self.captured {
            self.status = IntentStatus::Refunded;
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::Decimal;

    fn money(cents: i64) -> Money {
        Money::parse("amount", Decimal::new(cents, 2)).unwrap()
    }

    fn authorized(cents: i64) -> PaymentIntent {
        let mut intent = PaymentIntent::new(money(cents));
        intent.apply(Command::Authorize(Ok(AuthorizeAnswer::Authorized))).unwrap();
        intent
    }

    #[test]
    fn authorize_then_capture_moves_the_whole_amount_once() {
        let mut intent = authorized(99_999);
        assert_eq!(intent.apply(Command::Capture), Ok(true));
        assert_eq!(intent.apply(Command::Capture), Ok(false), "a retried capture is the same");
        assert_eq!((intent.status, intent.captured), (IntentStatus::Captured, money(99_999)));
    }

    #[test]
    fn a_confirmation_decides_a_payment_that_requires_action() {
        let mut intent = PaymentIntent::new(money(100));
        intent.apply(Command::Authorize(Ok(AuthorizeAnswer::ActionRequired))).unwrap();
        assert_eq!(intent.status, IntentStatus::RequiresAction);
        assert!(intent.apply(Command::Capture).is_err(), "nothing to capture before confirmation");
        assert_eq!(intent.apply(Command::Confirm(true)), Ok(true));
        assert_eq!(intent.status, IntentStatus::Authorized);
        assert_eq!(intent.apply(Command::Confirm(true)), Ok(false), "the same answer again");
        assert!(intent.apply(Command::Confirm(false)).is_err(), "decided once");

        let mut refused = PaymentIntent::new(money(100));
        refused.apply(Command::Authorize(Ok(AuthorizeAnswer::ActionRequired))).unwrap();
        refused.apply(Command::Confirm(false)).unwrap();
        assert_eq!(refused.status, IntentStatus::Failed);
    }

    #[test]
    fn a_void_releases_an_authorization_and_a_late_capture_is_refused() {
        let mut intent = authorized(100);
        assert_eq!(intent.apply(Command::Void), Ok(true));
        assert_eq!(intent.apply(Command::Void), Ok(false));
        assert_eq!(
            intent.apply(Command::Capture),
            Err(Refusal::WrongState(IntentStatus::Voided, "captured"))
        );
        assert_eq!(intent.captured, Money::ZERO);
    }

    #[test]
    fn refunds_add_up_to_the_captured_amount_and_no_further() {
        let mut intent = authorized(1_000);
        intent.apply(Command::Capture).unwrap();
        assert!(intent.apply(Command::Void).is_err(), "captured money is refunded, not voided");
        assert_eq!(intent.apply(Command::Refund(Some(money(300)))), Ok(true));
        assert_eq!(intent.status, IntentStatus::Captured);
        assert_eq!(
            intent.apply(Command::Refund(Some(money(701)))),
            Err(Refusal::RefundTooLarge { asked: money(701), left: money(700) })
        );
        assert_eq!(intent.apply(Command::Refund(None)), Ok(true));
        assert_eq!((intent.status, intent.refunded), (IntentStatus::Refunded, money(1_000)));
        assert_eq!(intent.apply(Command::Refund(None)), Ok(false), "a retried refund");
        let mut fresh = authorized(1_000);
        fresh.apply(Command::Capture).unwrap();
        assert_eq!(fresh.apply(Command::Refund(Some(money(0)))), Err(Refusal::EmptyRefund));
    }

    #[test]
    fn statuses_read_back_as_written() {
        for status in <IntentStatus as strum::IntoEnumIterator>::iter() {
            assert_eq!(IntentStatus::parse(status.as_str()), Some(status));
            let json = serde_json::to_string(&status).unwrap();
            assert_eq!(json, format!("\"{}\"", status.as_str()));
        }
    }

    #[test]
    fn a_decline_is_final_and_keeps_its_reason() {
        let mut intent = PaymentIntent::new(money(100));
        intent.apply(Command::Authorize(Err("card expired".into()))).unwrap();
        assert_eq!(intent.status, IntentStatus::Failed);
        assert_eq!(intent.failure_reason.as_deref(), Some("card expired"));
        assert_eq!(intent.apply(Command::Authorize(Ok(AuthorizeAnswer::Authorized))), Ok(false));
        assert_eq!(intent.status, IntentStatus::Failed, "a retried authorize changes nothing");
    }
}
