//! The HTTP API: its listener, who may call it (docs/security.md) and how much it takes on.

use super::{Problems, Secrets, parse};
use clap::Args;
use clap::builder::TypedValueParser;
use orderflow_api::AdminKey;
use secrecy::{ExposeSecret, SecretString};
use std::time::Duration;

#[derive(Debug, Clone, Args)]
pub struct HttpConfig {
    /// The address the API listens on.
    #[arg(long, env = "HTTP_HOST", value_name = "HTTP_HOST", default_value = "0.0.0.0")]
    pub http_host: String,
    /// The API's port; 0 picks a free one (tests).
    #[arg(long, env = "HTTP_PORT", value_name = "HTTP_PORT", default_value_t = 8080)]
    pub http_port: u16,
    /// `ADMIN_API_KEY`, a secret: the service credential of the operators' endpoints
    /// (X-API-Key). Unset: only operators' tokens (AUTH_MODE=jwt) reach them.
    #[arg(skip)]
    pub admin_api_key: Option<SecretString>,
    #[command(flatten)]
    pub auth: AuthConfig,
    /// Where the Temporal Web UI is, for the dashboard's links.
    #[arg(
        long,
        env = "TEMPORAL_UI_URL",
        value_name = "TEMPORAL_UI_URL",
        default_value = "http://localhost:8233"
    )]
    pub temporal_ui_url: String,
    /// Orders this API process lets run at once; beyond, new orders get 503 + Retry-After.
    #[arg(long, env = "MAX_ORDERS_IN_FLIGHT", value_name = "MAX_ORDERS_IN_FLIGHT", default_value_t = orderflow_api::DEFAULT_MAX_ORDERS_IN_FLIGHT, value_parser = clap::value_parser!(u32).range(1..=100_000).map(|n| n as usize))]
    pub max_orders_in_flight: usize,
    /// The longest an order counts as in flight (one still unfinished by then waits on
    /// something that more admissions would not make worse).
    #[arg(long, env = "ORDER_ADMISSION_LEASE_MS", value_name = "ORDER_ADMISSION_LEASE_MS", default_value = "30000", value_parser = parse::millis(1_000, 3_600_000))]
    pub admission_lease: Duration,
    /// Connections the HTTP listener keeps open at once; more wait to be accepted.
    #[arg(long, env = "HTTP_MAX_CONNECTIONS", value_name = "HTTP_MAX_CONNECTIONS", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..=1_000_000).map(|n| n as usize))]
    pub http_max_connections: usize,
    /// Connections one client (IP address) may hold open at once; its next ones are closed at
    /// once, so that one client's slow or idle sockets cannot fill the listener. Behind a proxy
    /// every client has the proxy's address: raise it to HTTP_MAX_CONNECTIONS there.
    #[arg(long, env = "HTTP_MAX_CONNECTIONS_PER_CLIENT", value_name = "HTTP_MAX_CONNECTIONS_PER_CLIENT", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=1_000_000).map(|n| n as usize))]
    pub http_max_connections_per_client: usize,
    /// Time a client has to send a request's headers; also how long an idle keep-alive
    /// connection stays open.
    #[arg(long, env = "HTTP_HEADER_READ_TIMEOUT_MS", value_name = "HTTP_HEADER_READ_TIMEOUT_MS", default_value = "5000", value_parser = parse::millis(100, 600_000))]
    pub header_read_timeout: Duration,
    /// Time for a whole request (body and answer); beyond it the answer is 503.
    #[arg(long, env = "HTTP_REQUEST_TIMEOUT_MS", value_name = "HTTP_REQUEST_TIMEOUT_MS", default_value = "30000", value_parser = parse::millis(100, 600_000))]
    pub request_timeout: Duration,
    /// Workflow task timeout of the orders this process starts (docs/operations.md, "Overload").
    #[arg(long, env = "WORKFLOW_TASK_TIMEOUT_MS", value_name = "WORKFLOW_TASK_TIMEOUT_MS", default_value = "5000", value_parser = parse::millis(1_000, 120_000))]
    pub workflow_task_timeout: Duration,
    /// With a worker in the same process (`serve`): hand an order's first workflow task to it
    /// in the start response (eager start: one round trip saved, docs/performance.md). Always
    /// off with Worker Versioning, where it would pin orders to this process's build.
    #[arg(long, env = "EAGER_WORKFLOW_START", value_name = "EAGER_WORKFLOW_START", default_value_t = true, action = clap::ArgAction::Set)]
    pub eager_start: bool,
}

impl Default for HttpConfig {
    fn default() -> Self {
        super::defaults()
    }
}

impl HttpConfig {
    pub fn take_secrets(&mut self, secrets: &Secrets) {
        self.admin_api_key = secrets.get("ADMIN_API_KEY");
        self.auth.hs256_secret = secrets.get("JWT_HS256_SECRET");
    }

    pub fn check(&self, problems: &mut Problems) {
        if let Some(key) = &self.admin_api_key {
            problems.require(AdminKey::new(key.expose_secret()).is_some(), || {
                format!("ADMIN_API_KEY must be at least {} characters", AdminKey::MIN_LENGTH)
            });
        }
        self.auth.check(problems);
    }

    pub fn connection_limits(&self) -> crate::http_server::ConnectionLimits {
        crate::http_server::ConnectionLimits {
            max_connections: self.http_max_connections,
            max_connections_per_client: self.http_max_connections_per_client,
            header_read_timeout: self.header_read_timeout,
            request_timeout: self.request_timeout,
        }
    }
}

/// The shortest HS256 secret accepted: RFC 7518 asks for a key as long as the hash (256 bits).
pub const MIN_HS256_SECRET_BYTES: usize = 32;

/// Who may call the API (docs/security.md).
#[derive(Debug, Clone, Args)]
pub struct AuthConfig {
    /// `off`: the open API of the Go service, for local development only. `jwt`: every
    /// request but /health, /ready, /docs and /api/openapi.json needs a bearer token.
    #[arg(long, env = "AUTH_MODE", value_name = "AUTH_MODE", value_enum, default_value = "off")]
    pub mode: AuthMode,
    /// `JWT_HS256_SECRET`, a secret: the shared secret of HS256 tokens, at least 32 bytes.
    #[arg(skip)]
    pub hs256_secret: Option<SecretString>,
    /// The identity provider's key set (RS256/ES256 tokens), e.g. Keycloak's
    /// `.../protocol/openid-connect/certs` or Auth0's `/.well-known/jwks.json`.
    #[arg(long, env = "JWT_JWKS_URL", value_name = "JWT_JWKS_URL")]
    pub jwks_url: Option<String>,
    #[command(flatten)]
    pub claims: TokenClaims,
    /// The longest a token may be valid (from its `iat`, or from now): longer-lived tokens are
    /// refused (401). `90s`, `15m`, `24h`, `7d`.
    #[arg(long, env = "JWT_MAX_TTL", value_name = "JWT_MAX_TTL", default_value = "24h", value_parser = parse::ttl)]
    pub max_ttl: Duration,
    /// How long an Idempotency-Key holds.
    #[arg(long, env = "IDEMPOTENCY_KEY_TTL_HOURS", value_name = "IDEMPOTENCY_KEY_TTL_HOURS", default_value_t = 24, value_parser = clap::value_parser!(u32).range(1..=720))]
    pub idempotency_ttl_hours: u32,
    /// Writes (orders, cancellations) per second a principal (or, anonymous, an IP address)
    /// may make on average; 0 switches the limit off. Beyond: 429 with Retry-After.
    #[arg(
        long,
        env = "RATE_LIMIT_WRITES_PER_SECOND",
        value_name = "RATE_LIMIT_WRITES_PER_SECOND",
        default_value_t = 20
    )]
    pub writes_per_second: u32,
    /// Writes a principal may make in a burst above that average.
    #[arg(long, env = "RATE_LIMIT_WRITES_BURST", value_name = "RATE_LIMIT_WRITES_BURST", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub writes_burst: u32,
    /// Webhook requests per second one sender (IP address) may make on average; 0 switches the
    /// limit off. Beyond: 429 with Retry-After (providers retry). Forged ones cost a signature
    /// check each: this bounds what a flood of them costs.
    #[arg(
        long,
        env = "WEBHOOK_REQUESTS_PER_SECOND",
        value_name = "WEBHOOK_REQUESTS_PER_SECOND",
        default_value_t = 500
    )]
    pub webhook_requests_per_second: u32,
}

impl AuthConfig {
    fn check(&self, problems: &mut Problems) {
        if self.mode == AuthMode::Jwt {
            problems.require(self.hs256_secret.is_some() || self.jwks_url.is_some(), || {
                "AUTH_MODE=jwt needs JWT_HS256_SECRET or JWT_JWKS_URL".into()
            });
            // An identity provider signs tokens for every application it serves: without an
            // audience, a token issued for another application (and its roles) would do here.
            problems.require(self.jwks_url.is_none() || self.claims.audience.is_some(), || {
                "JWT_JWKS_URL needs JWT_AUDIENCE (this service's client id at the identity \
                 provider)"
                    .into()
            });
            if let Some(secret) = &self.hs256_secret {
                problems.require(secret.expose_secret().len() >= MIN_HS256_SECRET_BYTES, || {
                    format!("JWT_HS256_SECRET must be at least {MIN_HS256_SECRET_BYTES} bytes")
                });
            }
        }
    }
}

/// What a token must carry (checked by the API, written by `orderflow token`).
#[derive(Debug, Clone, Default, Args)]
pub struct TokenClaims {
    /// When set, tokens must carry this `iss`.
    #[arg(long, env = "JWT_ISSUER", value_name = "JWT_ISSUER")]
    pub issuer: Option<String>,
    /// When set, tokens must carry this `aud`.
    #[arg(long, env = "JWT_AUDIENCE", value_name = "JWT_AUDIENCE")]
    pub audience: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AuthMode {
    Off,
    Jwt,
}
