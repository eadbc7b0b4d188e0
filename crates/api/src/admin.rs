//! The operators' endpoints (restock, stuck orders) take either the admin API key, a service
//! credential (`X-API-Key` compared in constant time with `ADMIN_API_KEY`), or, with
//! `AUTH_MODE=jwt`, an operator's token. Without either configured they are disabled, not open.

use crate::auth::Principal;
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
    /// The shortest key accepted: a short key can be guessed.
    pub const MIN_LENGTH: usize = 16;

    /// `None` for a key shorter than [`Self::MIN_LENGTH`].
    pub fn new(key: &str) -> Option<Self> {
        (key.len() >= Self::MIN_LENGTH).then(|| Self(Sha256::digest(key.as_bytes()).into()))
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
        let guess = parts.headers.get("x-api-key").map(|v| v.as_bytes());
        if guess.is_none() && !ctx.auth.is_off() {
            // No service key sent: an operator's token will do.
            return Principal::from_request_parts(parts, ctx)
                .await?
                .require_operator()
                .map(|()| Admin);
        }
        let Some(key) = &ctx.admin_key else {
            return Err(ApiError::Forbidden(
                "Admin endpoints are disabled: set ADMIN_API_KEY to enable them.".into(),
            ));
        };
        if key.matches(guess.unwrap_or_default()) {
            Ok(Admin)
        } else {
            Err(ApiError::Unauthorized("Send the admin API key in the X-API-Key header.".into()))
        }
    }
}
