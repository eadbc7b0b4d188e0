//! The test bed plays the identity provider: it signs its customers' tokens itself (HS256 with
//! the cluster's secret), as an identity provider would, rather than with the service's own
//! code, so that a mistake in how the service reads tokens cannot hide behind the same mistake
//! in how they were made.

use serde::Serialize;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Serialize)]
struct Claims<'a> {
    sub: &'a str,
    iat: u64,
    exp: u64,
}

/// A customer's bearer token, valid for `ttl` from now.
pub fn customer_token(secret: &str, customer: &str, ttl: Duration) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("the clock is after 1970");
    let claims = Claims { sub: customer, iat: now.as_secs(), exp: (now + ttl).as_secs() };
    let key = jsonwebtoken::EncodingKey::from_secret(secret.as_bytes());
    jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key)
        .expect("HS256 signing cannot fail")
}
