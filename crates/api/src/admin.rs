//! The admin API key: `X-API-Key` compared in constant time with `ADMIN_API_KEY`. Without a
//! configured key the admin endpoints are disabled, not open.

use crate::{ApiContext, ApiError};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The configured key, kept as a digest: comparing digests takes the same time whatever the
/// length or content of the guess.
#[derive(Clone)]
pub struct AdminKey([u8; 32]);

impl AdminKey {
    /// `None` for an empty key: an empty key would be no protection at all.
    pub fn new(key: &str) -> Option<Self> {
        (!key.is_empty()).then(|| Self(Sha256::digest(key.as_bytes()).into()))
    }

    fn matches(&self, guess: &[u8]) -> bool {
        let guess: [u8; 32] = Sha256::digest(guess).into();
        self.0.ct_eq(&guess).into()
    }
}

/// Proof that the request carried the admin key.
pub struct Admin;

impl FromRequestParts<ApiContext> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        ctx: &ApiContext,
    ) -> Result<Self, Self::Rejection> {
        let Some(key) = &ctx.admin_key else {
            return Err(ApiError::Forbidden(
                "Admin endpoints are disabled: set ADMIN_API_KEY to enable them.".into(),
            ));
        };
        let guess = parts.headers.get("x-api-key").map(|v| v.as_bytes()).unwrap_or_default();
        if key.matches(guess) {
            Ok(Admin)
        } else {
            Err(ApiError::Unauthorized("Send the admin API key in the X-API-Key header.".into()))
        }
    }
}
