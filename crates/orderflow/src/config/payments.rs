//! How OrderFlow takes payments (docs/payments.md).

use super::{Problems, Secrets, parse};
use clap::Args;
use secrecy::{ExposeSecret, SecretString};
use std::time::Duration;

/// The shortest webhook secret accepted (Stripe's are 32 random bytes and more).
pub const MIN_WEBHOOK_SECRET_BYTES: usize = 32;

#[derive(Debug, Clone, Args)]
pub struct PaymentConfig {
    /// The payment provider's root URL (`orderflow psp` in development, see `make dev`).
    /// Unset: the worker uses the in-process simulation (PAYMENT_DECLINE_ABOVE,
    /// PAYMENT_DELAY_MS, PAYMENT_TRANSIENT_FAILURE_RATE), which authorizes at once or declines
    /// and never asks the customer to confirm.
    #[arg(long, env = "PAYMENT_PROVIDER_URL", value_name = "PAYMENT_PROVIDER_URL", value_parser = parse::http_url)]
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
        value_parser = parse::millis(1_000, 24 * 3_600_000)
    )]
    pub confirmation_timeout: Duration,
    /// `PAYMENT_WEBHOOK_SECRET`, a secret: the provider signs its webhooks with it. Unset:
    /// `POST /api/webhooks/payments` answers 503.
    #[arg(skip)]
    pub webhook_secret: Option<SecretString>,
    /// The dashboard offers to confirm or refuse a payment awaiting the customer, as the
    /// customer's bank app would, by calling the simulated provider at PAYMENT_PROVIDER_URL
    /// from the browser. Development only (`make dev` sets it).
    #[arg(long, env = "DASHBOARD_PAYMENT_SIMULATOR", value_name = "DASHBOARD_PAYMENT_SIMULATOR", default_value_t = false, action = clap::ArgAction::Set)]
    pub dashboard_simulator: bool,
}

impl Default for PaymentConfig {
    fn default() -> Self {
        super::defaults()
    }
}

impl PaymentConfig {
    pub fn take_secrets(&mut self, secrets: &Secrets) {
        self.webhook_secret = secrets.get("PAYMENT_WEBHOOK_SECRET");
    }

    pub fn check(&self, problems: &mut Problems) {
        if let Some(secret) = &self.webhook_secret {
            // Anyone who can guess the secret can confirm payments that never happened.
            problems.require(secret.expose_secret().len() >= MIN_WEBHOOK_SECRET_BYTES, || {
                format!("PAYMENT_WEBHOOK_SECRET must be at least {MIN_WEBHOOK_SECRET_BYTES} bytes")
            });
            // The endpoint asks the provider about every event (and voids authorizations that
            // arrive late): the provider that sent them, not the in-process simulation.
            problems.require(self.provider_url.is_some(), || {
                "PAYMENT_WEBHOOK_SECRET is set but PAYMENT_PROVIDER_URL is not: the API process \
                 needs the provider too (it checks every event with it)"
                    .into()
            });
        }
    }
}
