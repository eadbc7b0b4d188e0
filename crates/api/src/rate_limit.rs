//! Per-principal limits on writes (placing and cancelling orders): a customer or a script
//! that floods the service gets `429` with `Retry-After`, others are not slowed. Anonymous
//! callers (`AUTH_MODE=off`) are limited per IP address.
//!
//! The key is the *authenticated* principal, so the check runs in the handlers, after the token
//! is verified, with `governor`'s keyed limiter (the crate behind `tower_governor`, whose layer
//! would run before authentication and could only key on what the caller claims).

use crate::ApiError;
use crate::auth::Principal;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

/// The write budget of every principal. Cheap to clone.
#[derive(Clone)]
pub struct WriteLimits {
    limiter: Option<Arc<DefaultKeyedRateLimiter<String>>>,
}

impl WriteLimits {
    /// `per_second` writes on average, bursts of `burst`; `per_second` 0 switches limits off.
    /// Spawns a task that forgets idle principals.
    pub fn new(per_second: u32, burst: u32) -> Self {
        let Some(rate) = NonZeroU32::new(per_second) else { return Self::off() };
        let burst = NonZeroU32::new(burst.max(1)).expect("at least 1");
        let limiter =
            Arc::new(DefaultKeyedRateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)));
        let weak = Arc::downgrade(&limiter);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(60)).await;
                let Some(limiter) = weak.upgrade() else { return };
                limiter.retain_recent();
            }
        });
        Self { limiter: Some(limiter) }
    }

    pub fn off() -> Self {
        Self { limiter: None }
    }

    /// One write by `principal` (from `client`, for anonymous callers), or 429.
    pub fn check(&self, principal: &Principal, client: &Client) -> Result<(), ApiError> {
        let key = match (principal, client.0) {
            (Principal::Open, Some(ip)) => format!("ip:{ip}"),
            (principal, _) => principal.scope(),
        };
        self.check_key(&key)
    }

    /// One request from `client`'s address (webhooks: their senders have no token), or 429.
    pub fn check_client(&self, client: &Client) -> Result<(), ApiError> {
        self.check_key(&client.0.map_or_else(|| "ip:unknown".to_owned(), |ip| format!("ip:{ip}")))
    }

    fn check_key(&self, key: &str) -> Result<(), ApiError> {
        let Some(limiter) = &self.limiter else { return Ok(()) };
        limiter.check_key(&key.to_owned()).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            let retry_after = u32::try_from(wait.as_secs()).unwrap_or(u32::MAX).max(1);
            ApiError::TooManyRequests {
                retry_after,
                detail: format!("Too many requests; retry after {retry_after} s."),
            }
        })
    }
}

/// The caller's IP address, when the server recorded it.
pub struct Client(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Client {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|info| info.0.ip())))
    }
}
