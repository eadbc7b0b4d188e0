//! `orderflow psp`, the simulated payment service provider (docs/payments.md).

use super::{DatabaseConfig, DeclineRule, Problems, Secrets, parse};
use clap::Args;
use secrecy::{ExposeSecret, SecretString};
use sqlx::postgres::PgConnectOptions;
use std::str::FromStr;
use std::time::Duration;

#[derive(Debug, Args)]
pub struct PspArgs {
    /// The address the simulated provider listens on.
    #[arg(long, env = "PSP_HOST", value_name = "PSP_HOST", default_value = "127.0.0.1")]
    pub host: String,
    /// The simulated provider's port.
    #[arg(long, env = "PSP_PORT", value_name = "PSP_PORT", default_value_t = 8090)]
    pub port: u16,
    /// `PSP_DATABASE_URL`, a secret: the provider's own ledger. Unset: the database
    /// `orderflow_psp` on OrderFlow's PostgreSQL server.
    #[arg(skip)]
    pub database_url: Option<SecretString>,
    #[command(flatten)]
    pub database: DatabaseConfig,
    /// Share (0..1) of payments that need the customer's confirmation.
    #[arg(long, env = "PSP_ACTION_REQUIRED_RATE", value_name = "PSP_ACTION_REQUIRED_RATE", default_value_t = 0.0, value_parser = parse::rate)]
    pub action_required_rate: f64,
    /// Share (0..1) of calls answered 503 before anything is done.
    #[arg(long, env = "PSP_OUTAGE_RATE", value_name = "PSP_OUTAGE_RATE", default_value_t = 0.0, value_parser = parse::rate)]
    pub outage_rate: f64,
    #[command(flatten)]
    pub decline: DeclineRule,
    /// How long the simulated customer takes to confirm a payment that needs it.
    #[arg(long, env = "PSP_CONFIRM_DELAY_MS", value_name = "PSP_CONFIRM_DELAY_MS", default_value = "2000", value_parser = parse::millis(0, 3_600_000))]
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
    #[arg(long, env = "PSP_AUTHORIZATION_TTL_MS", value_name = "PSP_AUTHORIZATION_TTL_MS", value_parser = parse::millis(0, 30 * 86_400_000))]
    pub authorization_ttl: Option<Duration>,
    /// Where webhook events are delivered; unset: they wait in the provider's outbox.
    #[arg(long, env = "PSP_WEBHOOK_URL", value_name = "PSP_WEBHOOK_URL", value_parser = parse::http_url)]
    pub webhook_url: Option<String>,
    /// How long after an event its first delivery is made.
    #[arg(long, env = "PSP_WEBHOOK_DELAY_MS", value_name = "PSP_WEBHOOK_DELAY_MS", default_value = "0", value_parser = parse::millis(0, 3_600_000))]
    pub webhook_delay: Duration,
    /// Share (0..1) of events delivered twice.
    #[arg(long, env = "PSP_WEBHOOK_DUPLICATE_RATE", value_name = "PSP_WEBHOOK_DUPLICATE_RATE", default_value_t = 0.0, value_parser = parse::rate)]
    pub webhook_duplicate_rate: f64,
    /// `PAYMENT_WEBHOOK_SECRET`, a secret shared with OrderFlow: the webhooks are signed with it.
    #[arg(skip)]
    pub webhook_secret: Option<SecretString>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ConfirmOutcomeArg {
    Succeed,
    Fail,
    Never,
}

impl PspArgs {
    pub fn take_secrets(&mut self, secrets: &Secrets) {
        self.database.take_secrets(secrets);
        self.database_url = secrets.get("PSP_DATABASE_URL");
        self.webhook_secret = secrets.get("PAYMENT_WEBHOOK_SECRET");
    }

    pub fn check(&self, problems: &mut Problems) {
        if let Err(e) = self.connect_options() {
            problems.push(e.to_string());
        }
        let secret_bytes = self.webhook_secret.as_ref().map_or(0, |s| s.expose_secret().len());
        problems.require(
            self.webhook_url.is_none() || secret_bytes >= super::MIN_WEBHOOK_SECRET_BYTES,
            || {
                format!(
                    "PSP_WEBHOOK_URL is set but PAYMENT_WEBHOOK_SECRET is not, or is shorter than \
                     {} bytes: webhooks are signed with it",
                    super::MIN_WEBHOOK_SECRET_BYTES
                )
            },
        );
    }

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
