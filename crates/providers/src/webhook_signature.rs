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

/// The longest header accepted, and the most signatures in it: checking one costs a pass over
/// the body, so a forged header must not be able to ask for thousands.
const MAX_HEADER_BYTES: usize = 4096;
const MAX_SIGNATURES: usize = 8;

/// The header value signing `body` at `timestamp` (unix seconds).
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let timestamp = timestamp.to_string();
    let digest = mac(secret, &timestamp, body).finalize().into_bytes();
    format!("t={timestamp},v1={}", hex(&digest))
}

/// Checks `header` against `body` at `now` (unix seconds).
pub fn verify(secret: &[u8], header: &str, body: &[u8], now: i64) -> Result<(), SignatureError> {
    let (timestamp, signatures) = parse(header).ok_or(SignatureError::Malformed)?;
    let skew = now.saturating_sub(timestamp.parse::<i64>().map_err(|_| SignatureError::Malformed)?);
    if skew.saturating_abs() > TOLERANCE_SECONDS {
        return Err(SignatureError::OutsideTolerance(skew));
    }
    // One pass over the body, whatever the number of signatures.
    let expected = mac(secret, timestamp, body);
    let matches =
        signatures.iter().any(|signature| expected.clone().verify_slice(signature).is_ok());
    if matches { Ok(()) } else { Err(SignatureError::Mismatch) }
}

/// The timestamp exactly as sent (1 to 19 digits, once) and the `v1` signatures (32 bytes of
/// hex each, at most [`MAX_SIGNATURES`]); `None` for anything else.
fn parse(header: &str) -> Option<(&str, Vec<Vec<u8>>)> {
    if header.len() > MAX_HEADER_BYTES {
        return None;
    }
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=')? {
            ("t", value) => {
                let digits =
                    (1..=19).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_digit());
                if timestamp.is_some() || !digits {
                    return None;
                }
                timestamp = Some(value);
            }
            ("v1", value) => {
                let signature = unhex(value).filter(|s| s.len() == 32)?;
                signatures.push(signature);
                if signatures.len() > MAX_SIGNATURES {
                    return None;
                }
            }
            // Other schemes (a future `v2`) are ignored, as providers document.
            _ => {}
        }
    }
    Some((timestamp?, signatures)).filter(|(_, signatures)| !signatures.is_empty())
}

fn mac(secret: &[u8], timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Strict hex: an even number of `0-9 a-f A-F`, nothing else.
fn unhex(text: &str) -> Option<Vec<u8>> {
    let digit = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    bytes.chunks(2).map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?)).collect()
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
        let good = sign(SECRET, 1, BODY);
        let v1 = good.split(',').nth(1).unwrap();
        let many = format!("t=1,{}", [v1; MAX_SIGNATURES + 1].join(","));
        let long = format!("t=1,{v1},x={}", "0".repeat(MAX_HEADER_BYTES));
        for header in [
            "",
            "t=1",
            "v1=00",
            "t=x,v1=00",
            "t=1,v1=zz",
            "t=1,v1=0",
            "garbage",
            "t=1,v1=",
            "t=1,v1=00",
            "t=+1,v1=00",
            &format!("t=1,t=1,{v1}"),
            &many,
            &long,
            &format!("t=1,{}", v1.replace("v1=", "v1=+")),
        ] {
            assert_eq!(verify(SECRET, header, BODY, 1), Err(SignatureError::Malformed), "{header}");
        }
        let old = sign(b"old secret", NOW, BODY);
        let new = sign(SECRET, NOW, BODY);
        let both = format!("{old},{}", new.split(',').nth(1).unwrap());
        assert_eq!(verify(SECRET, &both, BODY, NOW), Ok(()));
    }
}
