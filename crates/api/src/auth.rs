//! Who is asking: the request's [`Principal`].
//!
//! `AUTH_MODE=off` is the Go service's open API, for local development: every request is
//! [`Principal::Open`] and may do what the Go service allowed. `AUTH_MODE=jwt` needs
//! `Authorization: Bearer <JWT>`: signed with `JWT_HS256_SECRET` (HS256) or by a key of the
//! identity provider's JWKS (`JWT_JWKS_URL`, RS256/ES256, refreshed when a token names an
//! unknown key id), with `exp` required, `iss`/`aud` checked when configured and a small clock
//! leeway. Its `sub` is the customer; a `roles` claim containing `operator` makes an operator.
//! Anything else is a 401 with `WWW-Authenticate: Bearer`.

use crate::{ApiContext, ApiError};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use orderflow_domain::CustomerId;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, RwLock};

/// Clock skew tolerated on `exp` (and `nbf`), in seconds.
const LEEWAY_SECONDS: u64 = 30;

/// How often the JWKS may be fetched again for an unknown key id: a flood of tokens with made-up
/// key ids must not become a flood of requests to the identity provider.
const JWKS_REFRESH_AT_MOST_EVERY: Duration = Duration::from_secs(30);

/// Who sent the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// `AUTH_MODE=off`: nobody is identified; the open API of the Go service.
    Open,
    /// A customer: sees and acts on their own orders only.
    Customer(CustomerId),
    /// An operator (`roles` contains `operator`): everything.
    Operator { sub: String },
}

impl Principal {
    /// Whether this principal may see and act on an order placed by `owner`.
    pub fn may_access(&self, owner: &str) -> bool {
        match self {
            Self::Open | Self::Operator { .. } => true,
            Self::Customer(customer) => customer.as_str() == owner,
        }
    }

    /// The customer whose orders alone this principal may list, if it is restricted to one.
    pub fn only_customer(&self) -> Option<&CustomerId> {
        match self {
            Self::Customer(customer) => Some(customer),
            _ => None,
        }
    }

    /// Operators only (in `AUTH_MODE=off`, everyone is).
    pub fn require_operator(&self) -> Result<(), ApiError> {
        match self {
            Self::Customer(_) => {
                Err(ApiError::Forbidden("This needs an operator's token (role operator).".into()))
            }
            _ => Ok(()),
        }
    }

    pub fn is_operator(&self) -> bool {
        !matches!(self, Self::Customer(_))
    }

    /// The space in which its Idempotency-Keys live: two principals never share a key.
    pub fn scope(&self) -> String {
        match self {
            Self::Open => "open".into(),
            Self::Customer(customer) => format!("customer:{customer}"),
            Self::Operator { sub } => format!("operator:{sub}"),
        }
    }
}

/// How requests are authenticated (`AUTH_MODE`).
#[derive(Clone)]
pub enum Authenticator {
    Off,
    Jwt(Arc<JwtVerifier>),
}

impl Authenticator {
    pub fn is_off(&self) -> bool {
        matches!(self, Self::Off)
    }
}

/// Verifies bearer tokens.
pub struct JwtVerifier {
    hs256: Option<DecodingKey>,
    jwks: Option<Jwks>,
    issuer: Option<String>,
    audience: Option<String>,
    /// The longest a token may be valid (`JWT_MAX_TTL`): one that lives longer, leaked, would
    /// stay usable for too long.
    max_ttl: Duration,
}

/// The default of `JWT_MAX_TTL`.
pub const DEFAULT_JWT_MAX_TTL: Duration = Duration::from_secs(24 * 3600);

/// What a token must carry.
#[derive(Debug, Deserialize)]
struct Claims {
    sub: String,
    exp: u64,
    /// When it was issued; without it, its lifetime is counted from now.
    iat: Option<u64>,
    #[serde(default)]
    roles: Vec<String>,
}

/// Why a token was refused; the detail of the 401.
#[derive(Debug, thiserror::Error)]
pub enum TokenRefused {
    #[error("Send a token: Authorization: Bearer <JWT>.")]
    Missing,
    #[error("The token is invalid: {0}.")]
    Invalid(String),
}

impl JwtVerifier {
    /// At least one of the HS256 secret and the JWKS URL must be given.
    pub fn new(
        hs256_secret: Option<&SecretString>,
        jwks_url: Option<String>,
        issuer: Option<String>,
        audience: Option<String>,
        max_ttl: Duration,
    ) -> Self {
        let hs256 = hs256_secret.map(|s| DecodingKey::from_secret(s.expose_secret().as_bytes()));
        let jwks = jwks_url.map(Jwks::new);
        Self { hs256, jwks, issuer, audience, max_ttl }
    }

    /// The principal a token stands for.
    pub async fn verify(&self, token: &str) -> Result<Principal, TokenRefused> {
        let invalid = |why: &str| TokenRefused::Invalid(why.to_owned());
        let header = decode_header(token).map_err(|_| invalid("not a JWT"))?;
        // The key decides the algorithm, never the token: an HS256 token is only checked with
        // the shared secret, an RS256/ES256 one only with the provider's keys.
        let (key, algorithm) = match header.alg {
            Algorithm::HS256 => (
                self.hs256.clone().ok_or_else(|| invalid("HS256 tokens are not accepted"))?,
                header.alg,
            ),
            Algorithm::RS256 | Algorithm::ES256 => {
                let jwks =
                    self.jwks.as_ref().ok_or_else(|| invalid("only HS256 tokens are accepted"))?;
                let kid =
                    header.kid.as_deref().ok_or_else(|| invalid("the token names no key (kid)"))?;
                jwks.key(kid, header.alg)
                    .await
                    .ok_or_else(|| invalid("signed with an unknown key"))?
            }
            _ => return Err(invalid("unsupported algorithm")),
        };
        let mut validation = Validation::new(algorithm);
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        match &self.issuer {
            Some(issuer) => validation.set_issuer(&[issuer]),
            None => validation.iss = None,
        }
        match &self.audience {
            Some(audience) => validation.set_audience(&[audience]),
            None => validation.validate_aud = false,
        }
        let claims = decode::<Claims>(token, &key, &validation)
            .map_err(|e| TokenRefused::Invalid(describe(e.kind())))?
            .claims;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let from = claims.iat.map_or(now, |iat| iat.min(now));
        if claims.exp.saturating_sub(from) > self.max_ttl.as_secs() + LEEWAY_SECONDS {
            return Err(TokenRefused::Invalid(format!(
                "it is valid for longer than {} s (JWT_MAX_TTL)",
                self.max_ttl.as_secs()
            )));
        }
        if claims.roles.iter().any(|role| role == "operator") {
            // It is logged and shown on pages: printable characters only.
            if claims.sub.is_empty() || claims.sub.len() > 256 {
                return Err(invalid("sub must be 1 to 256 characters"));
            }
            if claims.sub.chars().any(unprintable) {
                return Err(invalid("sub must be printable"));
            }
            return Ok(Principal::Operator { sub: claims.sub });
        }
        CustomerId::parse(claims.sub)
            .map(Principal::Customer)
            .map_err(|_| invalid("sub is not a valid customer id"))
    }
}

/// Control characters, and the invisible ones that reorder or hide text where it is shown (bidi
/// overrides and isolates, zero-width characters, the byte order mark).
fn unprintable(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

/// The claims of a token minted by [`mint_hs256`].
#[derive(Debug, Clone, serde::Serialize)]
pub struct NewToken {
    pub sub: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
    /// Issued at, seconds since the Unix epoch.
    pub iat: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
}

impl NewToken {
    /// A token for `sub` valid for `ttl` from now.
    pub fn new(sub: impl Into<String>, roles: &[&str], ttl: Duration) -> Self {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("the clock is after 1970");
        Self {
            sub: sub.into(),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            exp: (now + ttl).as_secs(),
            iat: now.as_secs(),
            iss: None,
            aud: None,
        }
    }
}

/// An HS256 token signed with `secret` (`orderflow token`, tests); production tokens come
/// from the identity provider.
pub fn mint_hs256(secret: &SecretString, claims: &NewToken) -> String {
    let key = jsonwebtoken::EncodingKey::from_secret(secret.expose_secret().as_bytes());
    jsonwebtoken::encode(&jsonwebtoken::Header::new(Algorithm::HS256), claims, &key)
        .expect("HS256 signing cannot fail")
}

/// A refusal a client can act on, without the library's internals.
fn describe(kind: &jsonwebtoken::errors::ErrorKind) -> String {
    use jsonwebtoken::errors::ErrorKind;
    match kind {
        ErrorKind::ExpiredSignature => "it has expired".into(),
        ErrorKind::InvalidSignature => "its signature does not match".into(),
        ErrorKind::InvalidIssuer => "wrong issuer (iss)".into(),
        ErrorKind::InvalidAudience => "wrong audience (aud)".into(),
        ErrorKind::ImmatureSignature => "it is not valid yet (nbf)".into(),
        ErrorKind::MissingRequiredClaim(claim) => format!("the claim {claim} is missing"),
        ErrorKind::InvalidAlgorithm => "wrong algorithm".into(),
        _ => "it cannot be read".into(),
    }
}

/// The identity provider's public keys, by key id, fetched on demand.
struct Jwks {
    url: String,
    http: reqwest::Client,
    keys: RwLock<HashMap<String, (DecodingKey, Algorithm)>>,
    last_fetch: Mutex<Option<Instant>>,
}

impl Jwks {
    fn new(url: String) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .expect("an HTTP client for the JWKS");
        Self { url, http, keys: RwLock::default(), last_fetch: Mutex::default() }
    }

    /// The key `kid` for `algorithm`, fetching the key set again if it is not known yet.
    async fn key(&self, kid: &str, algorithm: Algorithm) -> Option<(DecodingKey, Algorithm)> {
        if let Some(found) = self.known(kid, algorithm).await {
            return Some(found);
        }
        {
            let mut last = self.last_fetch.lock().await;
            if last.is_some_and(|at| at.elapsed() < JWKS_REFRESH_AT_MOST_EVERY) {
                drop(last);
                return self.known(kid, algorithm).await;
            }
            *last = Some(Instant::now());
            match self.fetch().await {
                Ok(keys) => *self.keys.write().await = keys,
                Err(e) => tracing::warn!(url = %self.url, error = %e, "could not fetch the JWKS"),
            }
        }
        self.known(kid, algorithm).await
    }

    async fn known(&self, kid: &str, algorithm: Algorithm) -> Option<(DecodingKey, Algorithm)> {
        self.keys.read().await.get(kid).filter(|(_, alg)| *alg == algorithm).cloned()
    }

    async fn fetch(&self) -> anyhow::Result<HashMap<String, (DecodingKey, Algorithm)>> {
        let set: JwkSet = self.http.get(&self.url).send().await?.error_for_status()?.json().await?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let Some(kid) = jwk.common.key_id.clone() else { continue };
            let algorithm = match &jwk.algorithm {
                AlgorithmParameters::RSA(_) => Algorithm::RS256,
                AlgorithmParameters::EllipticCurve(_) => Algorithm::ES256,
                _ => continue,
            };
            if let Ok(key) = DecodingKey::from_jwk(jwk) {
                keys.insert(kid, (key, algorithm));
            }
        }
        Ok(keys)
    }
}

impl FromRequestParts<ApiContext> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        ctx: &ApiContext,
    ) -> Result<Self, Self::Rejection> {
        if let Some(principal) = parts.extensions.get::<Principal>() {
            return Ok(principal.clone());
        }
        let principal = match &ctx.auth {
            Authenticator::Off => Principal::Open,
            Authenticator::Jwt(verifier) => {
                let token =
                    bearer(parts).ok_or(ApiError::Unauthenticated(TokenRefused::Missing))?;
                verifier.verify(token).await.map_err(ApiError::Unauthenticated)?
            }
        };
        parts.extensions.insert(principal.clone());
        Ok(principal)
    }
}

fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}
