//! Configuration: command-line flags, each also read from the environment variable of the same
//! meaning (the original service's names where it had one). A bad value stops start-up with a
//! message naming the variable.

use clap::builder::TypedValueParser;
use clap::{Args, FromArgMatches, Parser, Subcommand};
use orderflow_domain::Money;
use rust_decimal::Decimal;
use secrecy::{ExposeSecret, SecretString};
use sqlx::postgres::PgConnectOptions;
use std::str::FromStr;
use std::time::Duration;
use temporalio_common::worker::WorkerDeploymentVersion;

#[derive(Debug, Parser)]
#[command(
    name = "orderflow",
    version,
    about = "Durable order processing on Temporal and PostgreSQL"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// HTTP API and Temporal worker in one process (the default).
    Serve(ServeArgs),
    /// Only the HTTP API (scale it apart from the workers).
    Api(ApiArgs),
    /// Only the Temporal worker that runs the order workflow and its activities.
    Worker(WorkerArgs),
    /// Create the database if missing and apply migrations, then exit.
    Migrate(MigrateArgs),
    /// Print an HS256 token signed with JWT_HS256_SECRET, for development, tests and the
    /// README's examples (production tokens come from the identity provider).
    Token(TokenArgs),
    /// The simulated payment service provider, an HTTP service of its own (docs/payments.md).
    Psp(PspArgs),
}

#[derive(Debug, Args)]
pub struct PspArgs {
    #[arg(long, env = "PSP_HOST", value_name = "PSP_HOST", default_value = "127.0.0.1")]
    pub host: String,
    #[arg(long, env = "PSP_PORT", value_name = "PSP_PORT", default_value_t = 8090)]
    pub port: u16,
    /// `PSP_DATABASE_URL` (or the file `PSP_DATABASE_URL_FILE`): the provider's own ledger.
    /// Unset: the database `orderflow_psp` on OrderFlow's PostgreSQL server.
    #[arg(skip = secret_from_env("PSP_DATABASE_URL"))]
    pub database_url: Option<SecretString>,
    #[command(flatten)]
    pub database: DatabaseConfig,
    /// Share (0..1) of payments that need the customer's confirmation.
    #[arg(long, env = "PSP_ACTION_REQUIRED_RATE", value_name = "PSP_ACTION_REQUIRED_RATE", default_value_t = 0.0, value_parser = parse_rate)]
    pub action_required_rate: f64,
    /// Share (0..1) of calls answered 503 before anything is done.
    #[arg(long, env = "PSP_OUTAGE_RATE", value_name = "PSP_OUTAGE_RATE", default_value_t = 0.0, value_parser = parse_rate)]
    pub outage_rate: f64,
    /// Amounts above this are declined.
    #[arg(long, env = "PAYMENT_DECLINE_ABOVE", value_name = "PAYMENT_DECLINE_ABOVE", default_value = "10000.00", value_parser = parse_money)]
    pub decline_above: Money,
    /// How long the simulated customer takes to confirm a payment that needs it.
    #[arg(long, env = "PSP_CONFIRM_DELAY_MS", value_name = "PSP_CONFIRM_DELAY_MS", default_value = "2000", value_parser = parse_millis(0, 3_600_000))]
    pub confirm_delay: Duration,
    /// What the simulated customer answers: `succeed`, `fail`, or `never` (the merchant's
    /// timeout decides).
    #[arg(
        long,
        env = "PSP_CONFIRM_OUTCOME",
        value_name = "PSP_CONFIRM_OUTCOME",
        value_enum,
        default_value = "succeed"
    )]
    pub confirm_outcome: ConfirmOutcomeArg,
    /// How long an authorization can be captured; an older one is voided and its capture
    /// refused (409), as card authorizations expire. Unset: never.
    #[arg(long, env = "PSP_AUTHORIZATION_TTL_MS", value_name = "PSP_AUTHORIZATION_TTL_MS", value_parser = parse_millis(0, 30 * 86_400_000))]
    pub authorization_ttl: Option<Duration>,
    /// Where webhook events are delivered; unset: they wait in the provider's outbox.
    #[arg(long, env = "PSP_WEBHOOK_URL", value_name = "PSP_WEBHOOK_URL")]
    pub webhook_url: Option<String>,
    /// How long after an event its first delivery is made.
    #[arg(long, env = "PSP_WEBHOOK_DELAY_MS", value_name = "PSP_WEBHOOK_DELAY_MS", default_value = "0", value_parser = parse_millis(0, 3_600_000))]
    pub webhook_delay: Duration,
    /// Share (0..1) of events delivered twice.
    #[arg(long, env = "PSP_WEBHOOK_DUPLICATE_RATE", value_name = "PSP_WEBHOOK_DUPLICATE_RATE", default_value_t = 0.0, value_parser = parse_rate)]
    pub webhook_duplicate_rate: f64,
    /// `PAYMENT_WEBHOOK_SECRET` (or `_FILE`), shared with OrderFlow; from the environment only.
    #[arg(skip = secret_from_env("PAYMENT_WEBHOOK_SECRET"))]
    pub webhook_secret: Option<SecretString>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ConfirmOutcomeArg {
    Succeed,
    Fail,
    Never,
}

impl PspArgs {
    /// The ledger's database: `PSP_DATABASE_URL`, else `orderflow_psp` beside OrderFlow's.
    pub fn connect_options(&self) -> anyhow::Result<PgConnectOptions> {
        match &self.database_url {
            Some(url) => PgConnectOptions::from_str(url.expose_secret()).map_err(|e| {
                anyhow::anyhow!("PSP_DATABASE_URL is not a valid PostgreSQL URL: {e}")
            }),
            None => Ok(self.database.connect_options()?.database("orderflow_psp")),
        }
    }
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The customer id (or the operator's name).
    #[arg(long)]
    pub sub: String,
    /// A role to grant, e.g. `operator`; repeat for several.
    #[arg(long = "role")]
    pub roles: Vec<String>,
    /// How long the token is valid: seconds, or a number with s, m, h or d.
    #[arg(long, default_value = "1h", value_parser = parse_ttl)]
    pub ttl: Duration,
    /// `JWT_HS256_SECRET`, from the environment only.
    #[arg(skip = secret_from_env("JWT_HS256_SECRET"))]
    pub secret: Option<SecretString>,
    #[arg(long, env = "JWT_ISSUER", value_name = "JWT_ISSUER")]
    pub issuer: Option<String>,
    #[arg(long, env = "JWT_AUDIENCE", value_name = "JWT_AUDIENCE")]
    pub audience: Option<String>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Also serve /metrics (Prometheus, no authentication) on this port, for a scraper on an
    /// internal network; with AUTH_MODE=jwt the API's own /metrics is for operators only.
    #[arg(long, env = "METRICS_PORT", value_name = "METRICS_PORT")]
    pub metrics_port: Option<u16>,
    #[command(flatten)]
    pub database: DatabaseConfig,
    #[command(flatten)]
    pub temporal: TemporalConfig,
    #[command(flatten)]
    pub http: HttpConfig,
    #[command(flatten)]
    pub worker: WorkerConfig,
    #[command(flatten)]
    pub simulation: SimulationConfig,
    #[command(flatten)]
    pub payments: PaymentConfig,
    #[command(flatten)]
    pub shutdown: ShutdownConfig,
}

#[derive(Debug, Args)]
pub struct ApiArgs {
    /// Also serve /metrics (Prometheus, no authentication) on this port, for a scraper on an
    /// internal network; with AUTH_MODE=jwt the API's own /metrics is for operators only.
    #[arg(long, env = "METRICS_PORT", value_name = "METRICS_PORT")]
    pub metrics_port: Option<u16>,
    #[command(flatten)]
    pub database: DatabaseConfig,
    #[command(flatten)]
    pub temporal: TemporalConfig,
    #[command(flatten)]
    pub http: HttpConfig,
    #[command(flatten)]
    pub payments: PaymentConfig,
    #[command(flatten)]
    pub shutdown: ShutdownConfig,
}

#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Serve /metrics (Prometheus) on this port; a worker has no HTTP API otherwise.
    #[arg(long, env = "METRICS_PORT", value_name = "METRICS_PORT")]
    pub metrics_port: Option<u16>,
    #[command(flatten)]
    pub database: DatabaseConfig,
    #[command(flatten)]
    pub temporal: TemporalConfig,
    #[command(flatten)]
    pub worker: WorkerConfig,
    #[command(flatten)]
    pub simulation: SimulationConfig,
    #[command(flatten)]
    pub payments: PaymentConfig,
    #[command(flatten)]
    pub shutdown: ShutdownConfig,
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    #[command(flatten)]
    pub database: DatabaseConfig,
    /// Also load the original service's eight demo products (existing ones are left alone).
    #[arg(long)]
    pub demo_catalog: bool,
}

#[derive(Debug, Clone, Args)]
pub struct DatabaseConfig {
    /// `DATABASE_URL` (or the file `DATABASE_URL_FILE`): full connection URL; when set, it wins
    /// over the POSTGRES_* variables. It holds a password: from the environment only.
    #[arg(skip = secret_from_env("DATABASE_URL"))]
    pub database_url: Option<SecretString>,
    #[arg(long, env = "POSTGRES_HOST", value_name = "POSTGRES_HOST", default_value = "localhost")]
    pub postgres_host: String,
    #[arg(long, env = "POSTGRES_PORT", value_name = "POSTGRES_PORT", default_value_t = 5432)]
    pub postgres_port: u16,
    #[arg(long, env = "POSTGRES_DB", value_name = "POSTGRES_DB", default_value = "orderflow")]
    pub postgres_db: String,
    #[arg(long, env = "POSTGRES_USER", value_name = "POSTGRES_USER", default_value = "postgres")]
    pub postgres_user: String,
    /// `POSTGRES_PASSWORD` (or the file `POSTGRES_PASSWORD_FILE`); unset: `password`, the
    /// original service's development default. From the environment only.
    #[arg(skip = secret_from_env("POSTGRES_PASSWORD"))]
    pub postgres_password: Option<SecretString>,
    /// Connections of each pool of this process, unless set per pool below.
    #[arg(
        long,
        env = "DATABASE_MAX_CONNECTIONS",
        value_name = "DATABASE_MAX_CONNECTIONS",
        default_value_t = 10,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub max_connections: u32,
    /// Connections of the HTTP API's pool (reads, order admission).
    #[arg(long, env = "API_DATABASE_MAX_CONNECTIONS", value_name = "API_DATABASE_MAX_CONNECTIONS", value_parser = clap::value_parser!(u32).range(1..))]
    pub api_max_connections: Option<u32>,
    /// Connections of the worker's pool (the steps). Separate from the API's, so that a burst
    /// of requests cannot starve the steps of connections, nor a burst of steps the reads.
    #[arg(long, env = "WORKER_DATABASE_MAX_CONNECTIONS", value_name = "WORKER_DATABASE_MAX_CONNECTIONS", value_parser = clap::value_parser!(u32).range(1..))]
    pub worker_max_connections: Option<u32>,
}

impl DatabaseConfig {
    pub fn api_pool_size(&self) -> u32 {
        self.api_max_connections.unwrap_or(self.max_connections)
    }

    pub fn worker_pool_size(&self) -> u32 {
        self.worker_max_connections.unwrap_or(self.max_connections)
    }

    pub fn connect_options(&self) -> anyhow::Result<PgConnectOptions> {
        match &self.database_url {
            Some(url) => PgConnectOptions::from_str(url.expose_secret())
                .map_err(|e| anyhow::anyhow!("DATABASE_URL is not a valid PostgreSQL URL: {e}")),
            None => Ok(PgConnectOptions::new()
                .host(&self.postgres_host)
                .port(self.postgres_port)
                .database(&self.postgres_db)
                .username(&self.postgres_user)
                .password(
                    self.postgres_password.as_ref().map_or("password", |p| p.expose_secret()),
                )),
        }
    }
}

/// Where Temporal is. The connection comes from Temporal's standard client configuration, read
/// by the SDK (`ENVCONFIG_VARIABLES`: `TEMPORAL_ADDRESS`, `TEMPORAL_API_KEY`, `TEMPORAL_TLS_*`,
/// `TEMPORAL_PROFILE` of the TOML file `TEMPORAL_CONFIG_FILE`), as for every other Temporal
/// SDK and the CLI. The seed's `TEMPORAL_HOST`/`TEMPORAL_PORT` still work and, when set, give
/// the address (setting them together with `TEMPORAL_ADDRESS` is refused as ambiguous).
#[derive(Debug, Clone, Args)]
pub struct TemporalConfig {
    /// Host of the Temporal frontend (default `localhost`, when `TEMPORAL_ADDRESS` is unset).
    #[arg(long, env = "TEMPORAL_HOST", value_name = "TEMPORAL_HOST")]
    pub temporal_host: Option<String>,
    /// Port of the Temporal frontend (default 7233, when `TEMPORAL_ADDRESS` is unset).
    #[arg(long, env = "TEMPORAL_PORT", value_name = "TEMPORAL_PORT")]
    pub temporal_port: Option<u16>,
    /// The namespace (else the configuration profile's, else `default`).
    #[arg(long, env = "TEMPORAL_NAMESPACE", value_name = "TEMPORAL_NAMESPACE")]
    pub namespace: Option<String>,
    #[arg(
        long,
        env = "TEMPORAL_TASK_QUEUE",
        value_name = "TEMPORAL_TASK_QUEUE",
        default_value = "order-processing"
    )]
    pub task_queue: String,
}

/// The variables of Temporal's standard client configuration, read by the SDK itself
/// (`temporalio_common::envconfig`), not by the flags above.
pub const ENVCONFIG_VARIABLES: [&str; 14] = [
    "TEMPORAL_ADDRESS",
    "TEMPORAL_API_KEY",
    "TEMPORAL_CONFIG_FILE",
    "TEMPORAL_PROFILE",
    "TEMPORAL_TLS",
    "TEMPORAL_TLS_CLIENT_CERT_PATH",
    "TEMPORAL_TLS_CLIENT_CERT_DATA",
    "TEMPORAL_TLS_CLIENT_KEY_PATH",
    "TEMPORAL_TLS_CLIENT_KEY_DATA",
    "TEMPORAL_TLS_SERVER_CA_CERT_PATH",
    "TEMPORAL_TLS_SERVER_CA_CERT_DATA",
    "TEMPORAL_TLS_SERVER_NAME",
    "TEMPORAL_TLS_DISABLE_HOST_VERIFICATION",
    "TEMPORAL_GRPC_META_*",
];

/// The OpenTelemetry variables the trace exporter reads (README "Traces"), by the SDKs'
/// standard names.
pub const OTEL_VARIABLES: [&str; 12] = [
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TIMEOUT",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
    "OTEL_SDK_DISABLED",
    "OTEL_TRACES_EXPORTER",
];

impl TemporalConfig {
    /// The seed's `TEMPORAL_HOST`/`TEMPORAL_PORT` as an address, if either is set.
    pub fn legacy_address(&self) -> Option<String> {
        if self.temporal_host.is_none() && self.temporal_port.is_none() {
            return None;
        }
        let host = self.temporal_host.as_deref().unwrap_or("localhost");
        Some(format!("{host}:{}", self.temporal_port.unwrap_or(7233)))
    }
}

#[derive(Debug, Clone, Args)]
pub struct HttpConfig {
    #[arg(long, env = "HTTP_HOST", value_name = "HTTP_HOST", default_value = "0.0.0.0")]
    pub http_host: String,
    #[arg(long, env = "HTTP_PORT", value_name = "HTTP_PORT", default_value_t = 8080)]
    pub http_port: u16,
    /// `ADMIN_API_KEY` (or the file `ADMIN_API_KEY_FILE`): the service credential of the
    /// operators' endpoints (X-API-Key), at least 16 characters. Unset: only operators' tokens
    /// (AUTH_MODE=jwt) reach them. A secret: from the environment only, never a flag.
    #[arg(skip = secret_from_env("ADMIN_API_KEY"))]
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
    #[arg(long, env = "ORDER_ADMISSION_LEASE_MS", value_name = "ORDER_ADMISSION_LEASE_MS", default_value = "30000", value_parser = parse_millis(1_000, 3_600_000))]
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
    #[arg(long, env = "HTTP_HEADER_READ_TIMEOUT_MS", value_name = "HTTP_HEADER_READ_TIMEOUT_MS", default_value = "5000", value_parser = parse_millis(100, 600_000))]
    pub header_read_timeout: Duration,
    /// Time for a whole request (body and answer); beyond it the answer is 503.
    #[arg(long, env = "HTTP_REQUEST_TIMEOUT_MS", value_name = "HTTP_REQUEST_TIMEOUT_MS", default_value = "30000", value_parser = parse_millis(100, 600_000))]
    pub request_timeout: Duration,
    /// Workflow task timeout of the orders this process starts (README "Overload").
    #[arg(long, env = "WORKFLOW_TASK_TIMEOUT_MS", value_name = "WORKFLOW_TASK_TIMEOUT_MS", default_value = "5000", value_parser = parse_millis(1_000, 120_000))]
    pub workflow_task_timeout: Duration,
    /// With a worker in the same process (`serve`): hand an order's first workflow task to it
    /// in the start response (eager start: one round trip saved, BENCHMARKS.md). Always off
    /// with Worker Versioning, where it would pin orders to this process's build.
    #[arg(long, env = "EAGER_WORKFLOW_START", value_name = "EAGER_WORKFLOW_START", default_value_t = true, action = clap::ArgAction::Set)]
    pub eager_start: bool,
}

impl HttpConfig {
    pub fn connection_limits(&self) -> crate::ConnectionLimits {
        crate::ConnectionLimits {
            max_connections: self.http_max_connections,
            max_connections_per_client: self.http_max_connections_per_client,
            header_read_timeout: self.header_read_timeout,
            request_timeout: self.request_timeout,
        }
    }
}

/// Who may call the API (README "Identity and access").
#[derive(Debug, Clone, Args)]
pub struct AuthConfig {
    /// `off`: the open API of the original service, for local development only. `jwt`: every
    /// request but /health, /ready, /docs and /api/openapi.json needs a bearer token.
    #[arg(long, env = "AUTH_MODE", value_name = "AUTH_MODE", value_enum, default_value = "off")]
    pub mode: AuthMode,
    /// `JWT_HS256_SECRET` (or the file `JWT_HS256_SECRET_FILE`): the shared secret of HS256
    /// tokens, at least 32 bytes. A secret: from the environment only, never a flag.
    #[arg(skip = secret_from_env("JWT_HS256_SECRET"))]
    pub hs256_secret: Option<SecretString>,
    /// The identity provider's key set (RS256/ES256 tokens), e.g. Keycloak's
    /// `.../protocol/openid-connect/certs` or Auth0's `/.well-known/jwks.json`.
    #[arg(long, env = "JWT_JWKS_URL", value_name = "JWT_JWKS_URL")]
    pub jwks_url: Option<String>,
    /// When set, tokens must carry this `iss`.
    #[arg(long, env = "JWT_ISSUER", value_name = "JWT_ISSUER")]
    pub issuer: Option<String>,
    /// When set, tokens must carry this `aud`.
    #[arg(long, env = "JWT_AUDIENCE", value_name = "JWT_AUDIENCE")]
    pub audience: Option<String>,
    /// The longest a token may be valid (from its `iat`, or from now): longer-lived tokens are
    /// refused (401). `90s`, `15m`, `24h`, `7d`.
    #[arg(long, env = "JWT_MAX_TTL", value_name = "JWT_MAX_TTL", default_value = "24h", value_parser = parse_ttl)]
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
    /// Writes a principal may make in a burst above that average.
    #[arg(long, env = "RATE_LIMIT_WRITES_BURST", value_name = "RATE_LIMIT_WRITES_BURST", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub writes_burst: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AuthMode {
    Off,
    Jwt,
}

/// The settings that are secrets: read from the environment (or `<NAME>_FILE`) only.
pub const SECRET_VARIABLES: [&str; 7] = [
    "DATABASE_URL",
    "TEMPORAL_API_KEY",
    "POSTGRES_PASSWORD",
    "ADMIN_API_KEY",
    "JWT_HS256_SECRET",
    "PSP_DATABASE_URL",
    "PAYMENT_WEBHOOK_SECRET",
];

/// A secret from the environment: `NAME`, or the contents of the file named by `NAME_FILE`
/// (Docker and Kubernetes secrets), trimmed. Secrets are never command-line flags (a flag is
/// visible to everyone in `ps`) and never printed (`SecretString` redacts itself).
pub fn secret_from_env(name: &str) -> Option<SecretString> {
    if let Ok(value) = std::env::var(name) {
        return Some(SecretString::from(value));
    }
    let path = std::env::var(format!("{name}_FILE")).ok()?;
    match std::fs::read_to_string(&path) {
        Ok(value) => Some(SecretString::from(value.trim().to_owned())),
        Err(e) => {
            // A secret that was meant to be set but cannot be read must not silently become
            // "no secret" (an open admin endpoint, a default password).
            eprintln!("error: {name}_FILE={path} cannot be read: {e}");
            std::process::exit(2)
        }
    }
}

/// How much one worker process takes on at once.
#[derive(Debug, Clone, Args)]
pub struct WorkerConfig {
    /// Workflow tasks processed at once. Generous, because an order started while every slot is
    /// taken cannot be started eagerly: its first task goes through the task queue, where such
    /// tasks waited up to 20 s at saturation with 100 slots (BENCHMARKS.md). A slot costs
    /// little: an order's task is a few milliseconds of steps.
    #[arg(long, env = "WORKER_WORKFLOW_SLOTS", value_name = "WORKER_WORKFLOW_SLOTS", default_value_t = 1000, value_parser = clap::value_parser!(u16).range(2..))]
    pub workflow_slots: u16,
    /// Activities (steps) run at once. Each holds a database connection while it runs, so
    /// more slots than DATABASE_MAX_CONNECTIONS only queue on the pool.
    #[arg(long, env = "WORKER_ACTIVITY_SLOTS", value_name = "WORKER_ACTIVITY_SLOTS", default_value_t = 100, value_parser = clap::value_parser!(u16).range(1..))]
    pub activity_slots: u16,
    /// Workflows kept in memory between their tasks (the sticky cache).
    #[arg(
        long,
        env = "WORKER_MAX_CACHED_WORKFLOWS",
        value_name = "WORKER_MAX_CACHED_WORKFLOWS",
        default_value_t = 1000
    )]
    pub max_cached_workflows: usize,
    /// A step that has failed this many times in a row is flagged as stuck (logged once at
    /// error level, counted in orderflow_steps_stuck, listed for the operators). The default
    /// is about 25 s of failing: longer than a database restart.
    #[arg(long, env = "STUCK_AFTER_ATTEMPTS", value_name = "STUCK_AFTER_ATTEMPTS", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
    pub stuck_after_attempts: u32,
    /// A worker is replaced by a fresh one after this many steps: the Temporal SDK keeps ~200
    /// bytes per step a worker has run until the worker is dropped (README "Overload").
    #[arg(long, env = "WORKER_RECYCLE_AFTER_STEPS", value_name = "WORKER_RECYCLE_AFTER_STEPS", default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub recycle_after_steps: u64,
    /// Worker Versioning (README "Releasing a new version"): the worker deployment this worker
    /// belongs to. With `TEMPORAL_WORKER_BUILD_ID`, every order is pinned to the build that
    /// started it and runs on that build's workers to its end; new orders go to the
    /// deployment's current version, set when a release is promoted. Unset: an unversioned
    /// worker, as in development.
    #[arg(long, env = "TEMPORAL_WORKER_DEPLOYMENT_NAME", value_name = "TEMPORAL_WORKER_DEPLOYMENT_NAME", requires = "build_id", value_parser = parse_version_part)]
    pub deployment_name: Option<String>,
    /// This release's build id (e.g. the image tag or git commit), with
    /// `TEMPORAL_WORKER_DEPLOYMENT_NAME`.
    #[arg(long, env = "TEMPORAL_WORKER_BUILD_ID", value_name = "TEMPORAL_WORKER_BUILD_ID", requires = "deployment_name", value_parser = parse_version_part)]
    pub build_id: Option<String>,
}

impl WorkerConfig {
    /// The worker deployment version this worker runs, when versioning is configured.
    pub fn deployment_version(&self) -> Option<WorkerDeploymentVersion> {
        let (name, build) = (self.deployment_name.as_ref()?, self.build_id.as_ref()?);
        Some(
            WorkerDeploymentVersion::builder()
                .deployment_name(name.clone())
                .build_id(build.clone())
                .build(),
        )
    }
}

/// A deployment name or build id: Temporal joins them with `:` into the version's name, so
/// neither may contain one (nor be empty or unreasonably long).
fn parse_version_part(value: &str) -> Result<String, String> {
    match value {
        "" => Err("must not be empty".into()),
        v if v.len() > 200 => Err("at most 200 characters".into()),
        v if v.contains(':') || v.chars().any(char::is_whitespace) => {
            Err("must not contain ':' or whitespace".into())
        }
        v => Ok(v.to_owned()),
    }
}

/// How a process stops.
#[derive(Debug, Clone, Args)]
pub struct ShutdownConfig {
    /// On SIGTERM or Ctrl-C: stop taking work, let what is in flight finish for at most this
    /// long, then exit (what was cut off is retried by another worker). Keep it below
    /// Kubernetes' terminationGracePeriodSeconds (default 30 s), e.g. 25000 there.
    #[arg(long, env = "SHUTDOWN_GRACE_MS", value_name = "SHUTDOWN_GRACE_MS", default_value = "30000", value_parser = parse_millis(0, 3_600_000))]
    pub grace: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        defaults()
    }
}

/// How OrderFlow takes payments (docs/payments.md).
#[derive(Debug, Clone, Args)]
pub struct PaymentConfig {
    /// The payment provider's root URL (`orderflow psp` in development, see `make dev`).
    /// Unset: the worker uses the in-process simulation (PAYMENT_DECLINE_ABOVE,
    /// PAYMENT_DELAY_MS, PAYMENT_TRANSIENT_FAILURE_RATE), which authorizes at once or declines
    /// and never asks the customer to confirm.
    #[arg(long, env = "PAYMENT_PROVIDER_URL", value_name = "PAYMENT_PROVIDER_URL", value_parser = parse_http_url)]
    pub provider_url: Option<String>,
    /// How long an order waits for the customer to confirm a payment that needs it (and
    /// holds its stock) before it fails with `payment_timeout`. At most a day: well inside
    /// the life of an authorization at providers (Stripe: 7 days), so that capture never
    /// meets an expired one.
    #[arg(
        long,
        env = "PAYMENT_CONFIRMATION_TIMEOUT_MS",
        value_name = "PAYMENT_CONFIRMATION_TIMEOUT_MS",
        default_value = "900000",
        value_parser = parse_millis(1_000, 24 * 3_600_000)
    )]
    pub confirmation_timeout: Duration,
    /// `PAYMENT_WEBHOOK_SECRET` (or `_FILE`): the provider signs its webhooks with it. Unset:
    /// `POST /api/webhooks/payments` answers 503. From the environment only.
    #[arg(skip = secret_from_env("PAYMENT_WEBHOOK_SECRET"))]
    pub webhook_secret: Option<SecretString>,
    /// The dashboard offers to confirm or refuse a payment awaiting the customer, as the
    /// customer's bank app would, by calling the simulated provider at PAYMENT_PROVIDER_URL
    /// from the browser. Development only (`make dev` sets it).
    #[arg(long, env = "DASHBOARD_PAYMENT_SIMULATOR", value_name = "DASHBOARD_PAYMENT_SIMULATOR", default_value_t = false, action = clap::ArgAction::Set)]
    pub dashboard_simulator: bool,
}

impl Default for PaymentConfig {
    fn default() -> Self {
        defaults()
    }
}

fn parse_http_url(text: &str) -> Result<String, String> {
    match url::Url::parse(text) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
            Ok(text.trim_end_matches('/').to_owned())
        }
        _ => Err("expected an http(s) URL such as http://localhost:8090".into()),
    }
}

/// Knobs of the simulated payment provider, inventory and notifier. All deterministic.
#[derive(Debug, Clone, Args)]
pub struct SimulationConfig {
    /// Orders whose total exceeds this are declined by the simulated payment provider.
    #[arg(
        long,
        env = "PAYMENT_DECLINE_ABOVE",
        value_name = "PAYMENT_DECLINE_ABOVE",
        default_value = "10000.00",
        value_parser = parse_money
    )]
    pub payment_decline_above: Money,
    #[arg(long, env = "PAYMENT_DELAY_MS", value_name = "PAYMENT_DELAY_MS", default_value = "0", value_parser = parse_delay)]
    pub payment_delay: Duration,
    #[arg(long, env = "INVENTORY_DELAY_MS", value_name = "INVENTORY_DELAY_MS", default_value = "0", value_parser = parse_delay)]
    pub inventory_delay: Duration,
    #[arg(
        long,
        env = "NOTIFICATION_DELAY_MS",
        value_name = "NOTIFICATION_DELAY_MS",
        default_value = "0",
        value_parser = parse_delay
    )]
    pub notification_delay: Duration,
    /// Share (0..1) of payment calls that fail transiently and are retried.
    #[arg(
        long,
        env = "PAYMENT_TRANSIENT_FAILURE_RATE",
        value_name = "PAYMENT_TRANSIENT_FAILURE_RATE",
        default_value_t = 0.0,
        value_parser = parse_rate
    )]
    pub payment_transient_failure_rate: f64,
    /// Share (0..1) of notification attempts that fail.
    #[arg(
        long,
        env = "NOTIFICATION_FAILURE_RATE",
        value_name = "NOTIFICATION_FAILURE_RATE",
        default_value_t = 0.0,
        value_parser = parse_rate
    )]
    pub notification_failure_rate: f64,
}

impl Default for SimulationConfig {
    fn default() -> Self {
        defaults()
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        defaults()
    }
}

/// A group of settings at their defaults, as declared on the flags above (the one place where
/// defaults live); the environment is not read.
pub fn defaults<T: Args + FromArgMatches>() -> T {
    let command = T::augment_args(clap::Command::new("defaults")).mut_args(|arg| arg.env(None));
    let matches =
        command.try_get_matches_from(["defaults"]).expect("every setting has a valid default");
    T::from_arg_matches(&matches).expect("the defaults form a valid configuration")
}

/// Simulated delays stay well inside the 10 s step timeout, so a delay never looks like a hang.
const MAX_DELAY_MS: u64 = 5_000;

fn parse_money(text: &str) -> Result<Money, String> {
    let amount =
        Decimal::from_str(text.trim()).map_err(|_| format!("{text:?} is not a decimal amount"))?;
    Money::parse("amount", amount).map_err(|e| e.reason)
}

fn parse_delay(text: &str) -> Result<Duration, String> {
    match text.trim().parse::<u64>() {
        Ok(ms) if ms <= MAX_DELAY_MS => Ok(Duration::from_millis(ms)),
        _ => Err(format!("must be whole milliseconds from 0 to {MAX_DELAY_MS}")),
    }
}

/// Whole milliseconds within `min..=max`.
fn parse_millis(min: u64, max: u64) -> impl Fn(&str) -> Result<Duration, String> + Clone {
    move |text| match text.trim().parse::<u64>() {
        Ok(ms) if (min..=max).contains(&ms) => Ok(Duration::from_millis(ms)),
        _ => Err(format!("must be whole milliseconds from {min} to {max}")),
    }
}

/// `90`, `90s`, `15m`, `1h`, `7d`.
fn parse_ttl(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err("must be a number with s, m, h or d, e.g. 1h".into()),
    };
    match number.parse::<u64>() {
        Ok(n) if n > 0 && n <= 365 * 86_400 / seconds => Ok(Duration::from_secs(n * seconds)),
        _ => Err("must be from 1 s to 365 d".into()),
    }
}

fn parse_rate(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(rate) if (0.0..=1.0).contains(&rate) => Ok(rate),
        _ => Err("must be a number from 0 to 1".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_values_are_refused_with_the_variable_named() {
        let err =
            Cli::try_parse_from(["orderflow", "serve", "--payment-delay", "fast"]).unwrap_err();
        assert!(err.to_string().contains("PAYMENT_DELAY_MS"), "{err}");
        let err =
            Cli::try_parse_from(["orderflow", "worker", "--payment-transient-failure-rate", "2"])
                .unwrap_err();
        assert!(err.to_string().contains("PAYMENT_TRANSIENT_FAILURE_RATE"), "{err}");
        let err =
            Cli::try_parse_from(["orderflow", "serve", "--payment-decline-above=-5"]).unwrap_err();
        assert!(err.to_string().contains("PAYMENT_DECLINE_ABOVE"), "{err}");
        let err = Cli::try_parse_from(["orderflow", "serve", "--http-port", "99999"]).unwrap_err();
        assert!(err.to_string().contains("HTTP_PORT"), "{err}");
    }

    #[test]
    fn secrets_are_never_command_line_flags() {
        for flag in ["--admin-api-key", "--database-url", "--postgres-password", "--hs256-secret"] {
            let err = Cli::try_parse_from(["orderflow", "serve", flag, "s3cret-s3cret-s3cret"]);
            assert!(err.is_err(), "{flag} is accepted as a flag");
        }
        assert!(
            Cli::try_parse_from(["orderflow", "token", "--sub", "c", "--jwt-hs256-secret", "x"])
                .is_err()
        );
    }

    #[test]
    fn token_lifetimes_read_as_people_write_them() {
        assert_eq!(parse_ttl("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_ttl("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_ttl("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_ttl("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert!(parse_ttl("0").is_err() && parse_ttl("1y").is_err() && parse_ttl("").is_err());
    }

    #[test]
    fn defaults_come_from_the_flags_declarations() {
        let worker = WorkerConfig::default();
        assert_eq!((worker.workflow_slots, worker.activity_slots), (1000, 100));
        assert_eq!(SimulationConfig::default().payment_decline_above.to_string(), "10000.00");
        let http = HttpConfig::default();
        assert_eq!(http.max_orders_in_flight, orderflow_api::DEFAULT_MAX_ORDERS_IN_FLIGHT);
        assert_eq!(http.workflow_task_timeout, orderflow_api::DEFAULT_WORKFLOW_TASK_TIMEOUT);
        assert_eq!(http.admission_lease, orderflow_api::DEFAULT_ADMISSION_LEASE);
    }

    #[test]
    fn defaults_match_the_original_service() {
        let Some(Command::Serve(args)) =
            Cli::try_parse_from(["orderflow", "serve"]).unwrap().command
        else {
            panic!("serve expected")
        };
        // Only values the test command does not set in the environment.
        assert_eq!(args.http.http_port, 8080);
        assert_eq!(args.temporal.task_queue, "order-processing");
        assert_eq!(args.simulation.payment_decline_above.to_string(), "10000.00");
    }

    #[test]
    fn the_default_database_is_the_one_tests_and_tools_use() {
        let mut database: DatabaseConfig = defaults();
        (database.database_url, database.postgres_password) = (None, None);
        let ours = database.connect_options().unwrap();
        let theirs = PgConnectOptions::from_str(orderflow_store::DEFAULT_DATABASE_URL).unwrap();
        assert_eq!(
            (ours.get_host(), ours.get_port(), ours.get_database(), ours.get_username()),
            (theirs.get_host(), theirs.get_port(), theirs.get_database(), theirs.get_username())
        );
    }
}
