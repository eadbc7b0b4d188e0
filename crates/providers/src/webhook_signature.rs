//! Signed webhooks, as payment providers sign them (Stripe's scheme): the header
//! `Payment-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`.
//! The timestamp is signed too, so an old delivery cannot be replayed outside the tolerance;
//! several `v1=` entries may be sent while a secret is being rotated. The comparison is the
//! `hmac` crate's, in constant time.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "Payment-Signature";

/// How far a signature's timestamp may be from now, either way.
pub const TOLERANCE_SECONDS: i64 = 5 * 60;

/// Why a delivery's signature is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the Payment-Signature header is missing or malformed")]
    Malformed,
    #[error("the signature's timestamp is {0} s away from now (at most 300 are accepted)")]
    OutsideTolerance(i64),
    #[error("no signature matches the body")]
    Mismatch,
}

/// The header value signing `body` at `timestamp` (unix seconds).
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let digest = mac(secret, timestamp, body).finalize().into_bytes();
    format!("t={timestamp},v1={}", hex(&digest))
}

/// Checks `header` against `body` at `now` (unix seconds).
pub fn verify(secret: &[u8], header: &str, body: &[u8], now: i64) -> Result<(), SignatureError> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => {
                timestamp = Some(value.parse::<i64>().map_err(|_| SignatureError::Malformed)?)
            }
            Some(("v1", value)) => signatures.push(unhex(value).ok_or(SignatureError::Malformed)?),
            // Other schemes (a future `v2`) are ignored, as providers document.
            Some(_) => {}
            None => return Err(SignatureError::Malformed),
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed);
    }
    let skew = now.saturating_sub(timestamp);
    if skew.saturating_abs() > TOLERANCE_SECONDS {
        return Err(SignatureError::OutsideTolerance(skew));
    }
    let matches = signatures
        .iter()
        .any(|signature| mac(secret, timestamp, body).verify_slice(signature).is_ok());
    if matches { Ok(()) } else { Err(SignatureError::Mismatch) }
}

fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"whsec_test_secret";
    const BODY: &[u8] = br#"{"id":"evt_1","type":"payment_intent.authorized"}"#;
    const NOW: i64 = 1_800_000_000;

    #[test]
    fn a_signed_body_verifies_within_the_tolerance() {
        let header = sign(SECRET, NOW, BODY);
        assert!(header.starts_with(&format!("t={NOW},v1=")));
        assert_eq!(verify(SECRET, &header, BODY, NOW), Ok(()));
        assert_eq!(verify(SECRET, &header, BODY, NOW + TOLERANCE_SECONDS), Ok(()));
        assert_eq!(verify(SECRET, &header, BODY, NOW - TOLERANCE_SECONDS), Ok(()));
    }

    #[test]
    fn a_known_signature_is_reproduced() {
        // HMAC-SHA256("key", "1.body"), computed independently with Python's hmac module.
        let expected = "t=1,v1=91b5374b153842ad05b2c4eab9349b8321b14703165bd3fb8b034dfb8be98ae5";
        assert_eq!(sign(b"key", 1, b"body"), expected);
        assert_eq!(verify(b"key", expected, b"body", 1), Ok(()));
    }

    #[test]
    fn anything_changed_or_late_is_refused() {
        let header = sign(SECRET, NOW, BODY);
        let other_body = br#"{"id":"evt_1","type":"payment_intent.failed"}"#;
        assert_eq!(verify(SECRET, &header, other_body, NOW), Err(SignatureError::Mismatch));
        assert_eq!(verify(b"another secret", &header, BODY, NOW), Err(SignatureError::Mismatch));
        assert_eq!(
            verify(SECRET, &header, BODY, NOW + TOLERANCE_SECONDS + 1),
            Err(SignatureError::OutsideTolerance(TOLERANCE_SECONDS + 1))
        );
        // The timestamp is signed: moving it forward breaks the signature.
        let moved = header.replace(&format!("t={NOW}"), &format!("t={}", NOW + 60));
        assert_eq!(verify(SECRET, &moved, BODY, NOW + 60), Err(SignatureError::Mismatch));
    }

    #[test]
    fn malformed_headers_are_refused_and_rotation_is_allowed() {
        for header in ["", "t=1", "v1=00", "t=x,v1=00", "t=1,v1=zz", "t=1,v1=0", "garbage"] {
            assert_eq!(verify(SECRET, header, BODY, 1), Err(SignatureError::Malformed), "{header}");
        }
        let old = sign(b"old secret", NOW, BODY);
        let new = sign(SECRET, NOW, BODY);
        let both = format!("{old},{}", new.split(',').nth(1).unwrap());
        assert_eq!(verify(SECRET, &both, BODY, NOW), Ok(()));
    }
}
