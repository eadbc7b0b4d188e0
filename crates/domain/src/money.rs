//! Money: an exact decimal amount in the shop's currency with at most two decimal places.
//! Never a float: `0.1 + 0.2` must be `0.30`.

use crate::InvalidField;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema),
    schema(value_type = String, example = "999.99")
)]
#[serde(try_from = "Decimal", into = "Decimal")]
pub struct Money(Decimal);

impl Money {
    /// Largest amount accepted anywhere (fits NUMERIC(12,2) with room for sums).
    pub const MAX: Decimal = Decimal::from_parts(1_000_000_000, 0, 0, false, 0);

    pub const ZERO: Money = Money(Decimal::ZERO);

    pub fn parse(field: &str, amount: Decimal) -> Result<Self, InvalidField> {
        if amount.is_sign_negative() && !amount.is_zero() {
            return Err(InvalidField::new(field, "must not be negative"));
        }
        if amount.normalize().scale() > 2 {
            return Err(InvalidField::new(field, "must have at most 2 decimal places"));
        }
        if amount > Self::MAX {
            return Err(InvalidField::new(field, format!("must be at most {}", Self::MAX)));
        }
        Ok(Self(amount.normalize().round_dp(2)))
    }

    pub fn amount(&self) -> Decimal {
        // Always shown with two decimals: 999.90, not 999.9.
        let mut d = self.0;
        d.rescale(2);
        d
    }
}

impl TryFrom<Decimal> for Money {
    type Error = InvalidField;
    fn try_from(value: Decimal) -> Result<Self, Self::Error> {
        Self::parse("amount", value)
    }
}

impl From<Money> for Decimal {
    fn from(m: Money) -> Decimal {
        m.amount()
    }
}

// Arithmetic is checked: a result above `Money::MAX` is `None`, never an amount that the rest
// of the system (the worker decoding an order, a NUMERIC column) would refuse later.
impl Money {
    pub fn checked_add(self, rhs: Money) -> Option<Money> {
        Self::within_max(self.0.checked_add(rhs.0)?)
    }

    pub fn checked_mul(self, rhs: u32) -> Option<Money> {
        Self::within_max(self.0.checked_mul(Decimal::from(rhs))?)
    }

    /// The sum of `amounts`, or `None` above `Money::MAX`.
    pub fn checked_sum(amounts: impl IntoIterator<Item = Money>) -> Option<Money> {
        amounts.into_iter().try_fold(Money::ZERO, Money::checked_add)
    }

    fn within_max(amount: Decimal) -> Option<Money> {
        (amount <= Self::MAX).then_some(Money(amount))
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.amount().fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn sums_are_exact() {
        let amounts = [d("0.10"), d("0.20")].map(|a| Money::parse("p", a).unwrap());
        assert_eq!(Money::checked_sum(amounts).unwrap().to_string(), "0.30");
        let price = Money::parse("p", d("999.99")).unwrap();
        assert_eq!(price.checked_mul(3).unwrap().to_string(), "2999.97");
    }

    #[test]
    fn arithmetic_beyond_the_largest_amount_is_refused_not_wrapped() {
        let near_max = Money::parse("p", d("999999999.99")).unwrap();
        assert_eq!(near_max.checked_mul(1), Some(near_max));
        assert_eq!(near_max.checked_mul(1000), None);
        assert_eq!(near_max.checked_add(Money::parse("p", d("0.02")).unwrap()), None);
        assert_eq!(Money::checked_sum([near_max, near_max]), None);
    }

    #[test]
    fn rejects_negative_fractional_cents_and_absurd_amounts() {
        assert!(Money::parse("price", d("-1")).is_err());
        assert!(Money::parse("price", d("1.005")).is_err());
        assert!(Money::parse("price", d("1000000000.01")).is_err());
        assert!(Money::parse("price", d("1.50")).is_ok());
        assert!(
            Money::parse("price", d("1.500")).is_ok(),
            "trailing zeros are not extra precision"
        );
    }

    #[test]
    fn a_json_number_becomes_the_exact_decimal() {
        let m: Money = serde_json::from_str("999.99").unwrap();
        assert_eq!(m.to_string(), "999.99");
        assert_eq!(serde_json::to_string(&m).unwrap(), "\"999.99\"");
        let m: Money = serde_json::from_str("\"12.5\"").unwrap();
        assert_eq!(m.to_string(), "12.50");
    }
}
