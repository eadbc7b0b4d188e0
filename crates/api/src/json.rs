//! `Json` that rejects with the same problem+json errors as everything else: 400 for broken
//! JSON, 415 without a JSON content type, 413 over the size limit, 422 for a wrong shape
//! (axum's message names the offending field, e.g. `items[0].quantity: invalid type`).

use crate::ApiError;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use rust_decimal::Decimal;
use serde::Deserialize;
use std::str::FromStr;

pub struct AppJson<T>(pub T);

impl<S, T> FromRequest<S> for AppJson<T>
where
    axum::Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(JsonRejection::JsonDataError(e)) => Err(ApiError::Unprocessable {
                code: "invalid_body",
                detail: without_type_names(&e.body_text()),
                field: None,
            }),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::Rejected {
                status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
                detail: "Send the body as JSON with `Content-Type: application/json`.".into(),
            }),
            Err(other) => {
                Err(ApiError::Rejected { status: other.status(), detail: other.body_text() })
            }
        }
    }
}

/// serde's messages name the Rust type they expected (`expected struct CreateOrderRequest`):
/// an internal name a client can do nothing with. It says what JSON was expected instead.
fn without_type_names(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let next = |text: &str| match (text.find("struct "), text.find("enum ")) {
        (Some(s), Some(e)) => Some(s.min(e)),
        (s, e) => s.or(e),
    };
    while let Some(at) = next(rest) {
        let (kind, words) = if rest[at..].starts_with("struct ") {
            ("struct ", "an object")
        } else {
            ("enum ", "one of the allowed values")
        };
        out.push_str(&rest[..at]);
        let after = &rest[at + kind.len()..];
        let name = after.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(after.len());
        if name == 0 {
            out.push_str(kind);
        } else {
            out.push_str(words);
        }
        rest = &after[name..];
    }
    out.push_str(rest);
    out
}

/// A whole number as JSON Schema counts one: `3` or `3.0` (a client that only has doubles
/// sends the latter, and the description's `type: integer` allows it); `3.5` or `"3"` are
/// refused like any value of the wrong type. For `#[serde(deserialize_with = "whole_number")]`.
pub fn whole_number<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    use serde::de::{Error, Unexpected};
    match serde_json::Number::deserialize(deserializer)? {
        n if n.is_i64() => Ok(n.as_i64().unwrap_or_default()),
        n if n.is_u64() => Err(D::Error::invalid_value(
            Unexpected::Other("a number that large"),
            &"a whole number",
        )),
        n => {
            let value = n.as_f64().unwrap_or(f64::NAN);
            // Exactly representable, and inside i64's range, so the cast below is exact.
            if value.fract() == 0.0 && value.abs() < 9.0e15 {
                Ok(value as i64)
            } else {
                Err(D::Error::invalid_value(Unexpected::Float(value), &"a whole number"))
            }
        }
    }
}

/// A price written as text: 0 to 1,000,000,000, at most two decimals, nothing else (no sign,
/// exponent or separators). The description states the same pattern.
pub const PRICE_PATTERN: &str = r"^(1000000000(\.00?)?|[0-9]{1,9}(\.[0-9]{1,2})?)$";

/// A price: a JSON number, or a string of [`PRICE_PATTERN`] (checked by hand below, in the
/// same terms). The range and the two decimals of a number are checked with the rest of the
/// order (`Money::parse`), like any other value.
pub fn price<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Decimal, D::Error> {
    use serde::de::{Error, Unexpected};
    let expected = &"a price: a number, or a string like \"999.99\"";
    let decimal = |text: &str| {
        Decimal::from_str(text)
            .or_else(|_| Decimal::from_scientific(text))
            .map_err(|_| D::Error::invalid_value(Unexpected::Str(text), expected))
    };
    match serde_json::Value::deserialize(deserializer)? {
        serde_json::Value::Number(n) => decimal(&n.to_string()),
        serde_json::Value::String(text) if is_price_text(&text) => decimal(&text),
        serde_json::Value::String(text) => {
            Err(D::Error::invalid_value(Unexpected::Str(&text), expected))
        }
        _ => Err(D::Error::invalid_type(Unexpected::Other("a value of another type"), expected)),
    }
}

/// [`PRICE_PATTERN`], without a regex engine.
fn is_price_text(text: &str) -> bool {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let fraction_ok = if text.contains('.') { (1..=2).contains(&fraction.len()) } else { true };
    let whole_ok = (1..=9).contains(&whole.len())
        || (whole == "1000000000" && fraction.bytes().all(|b| b == b'0'));
    digits(whole) && digits(fraction) && fraction_ok && whole_ok
}

#[cfg(test)]
mod tests {
    use super::{is_price_text, whole_number};
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    struct Count {
        #[serde(deserialize_with = "whole_number")]
        n: i64,
    }

    fn count(json: &str) -> Option<i64> {
        serde_json::from_str::<Count>(json).ok().map(|c| c.n)
    }

    #[test]
    fn whole_numbers_are_accepted_in_either_notation_and_nothing_else() {
        assert_eq!(count(r#"{"n": 3}"#), Some(3));
        assert_eq!(count(r#"{"n": 3.0}"#), Some(3));
        assert_eq!(count(r#"{"n": -2e2}"#), Some(-200));
        assert_eq!(count(r#"{"n": 3.5}"#), None);
        assert_eq!(count(r#"{"n": "3"}"#), None);
        assert_eq!(count(r#"{"n": 1e300}"#), None);
        assert_eq!(count(r#"{"n": 18446744073709551615}"#), None);
        assert_eq!(count(r#"{"n": null}"#), None);
    }

    #[test]
    fn price_text_is_digits_with_at_most_two_decimals_up_to_a_billion() {
        for good in
            ["0", "999.99", "5.5", "000123.40", "999999999.99", "1000000000", "1000000000.00"]
        {
            assert!(is_price_text(good), "{good}");
        }
        for bad in [
            "",
            ".5",
            "5.",
            "5.555",
            "+5",
            "-0",
            "1e3",
            "1_000",
            " 5",
            "1000000000.01",
            "1000000001",
            "١٢",
        ] {
            assert!(!is_price_text(bad), "{bad}");
        }
    }
}

#[cfg(test)]
mod type_names {
    use super::without_type_names;

    #[test]
    fn rust_type_names_are_not_shown() {
        assert_eq!(
            without_type_names(
                "invalid type: string \"x\", expected struct CreateOrderRequest at line 1"
            ),
            "invalid type: string \"x\", expected an object at line 1"
        );
        assert_eq!(
            without_type_names("unknown variant `x`, expected enum AuthMode"),
            "unknown variant `x`, expected one of the allowed values"
        );
        assert_eq!(
            without_type_names("items[0].quantity: invalid type"),
            "items[0].quantity: invalid type"
        );
        assert_eq!(
            without_type_names("expected enum Kind or struct Order"),
            "expected one of the allowed values or an object"
        );
    }
}
