//! The simulated payment provider (`orderflow psp`) for end-to-end tests: its real router and
//! webhook dispatcher, in process, on a free port and a fresh ledger database.

use orderflow_domain::Money;
use orderflow_psp::{ConfirmOutcome, Ledger, Outbox, PspConfig, Webhooks, router, run_webhooks};
use orderflow_store::testing::{TestDatabase, fresh_database, server_from_env};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use std::time::Duration;

/// The secret the test provider signs its webhooks with, and the test app checks them with.
pub const WEBHOOK_SECRET: &str = "whsec_test_secret_0123456789abcdef0123";

/// The simulator's knobs a test turns (the `PSP_*` variables).
#[derive(Debug, Clone)]
pub struct ProviderKnobs {
    pub action_required_rate: f64,
    pub confirm_delay: Duration,
    pub confirm_outcome: ConfirmOutcome,
    pub outage_rate: f64,
    pub webhook_duplicate_rate: f64,
    pub webhook_delay: Duration,
    /// `PSP_AUTHORIZATION_TTL_MS`: how long an authorization can be captured.
    pub authorization_ttl: Option<Duration>,
}

impl Default for ProviderKnobs {
    fn default() -> Self {
        Self {
            action_required_rate: 0.0,
            confirm_delay: Duration::from_millis(200),
            confirm_outcome: ConfirmOutcome::Succeed,
            outage_rate: 0.0,
            webhook_duplicate_rate: 0.0,
            webhook_delay: Duration::ZERO,
            authorization_ttl: None,
        }
    }
}

pub struct TestProvider {
    /// The provider's root, as `PAYMENT_PROVIDER_URL`.
    pub url: String,
    http: reqwest::Client,
    ledger: Ledger,
    database: TestDatabase,
}

impl TestProvider {
    /// The provider, its events waiting in its outbox until [`Self::deliver_webhooks_to`].
    pub async fn start(knobs: ProviderKnobs) -> Self {
        let database = fresh_database(&server_from_env()).await;
        let outbox =
            Outbox { delay: knobs.webhook_delay, duplicate_rate: knobs.webhook_duplicate_rate };
        let ledger = Ledger::new(database.pool().clone(), outbox);
        ledger.install().await.expect("the ledger's tables");
        let config = PspConfig {
            decline_above: Money::parse("limit", Decimal::from(10_000)).unwrap(),
            action_required_rate: knobs.action_required_rate,
            outage_rate: knobs.outage_rate,
            confirm_delay: knobs.confirm_delay,
            confirm_outcome: knobs.confirm_outcome,
            authorization_ttl: knobs.authorization_ttl,
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let router = router(ledger.clone(), config);
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self { url, http: reqwest::Client::new(), ledger, database }
    }

    /// Starts the dispatcher (and the simulated customers' answers): its webhooks, signed
    /// with [`WEBHOOK_SECRET`], go to `url` from now on.
    pub fn deliver_webhooks_to(&self, url: String) {
        let webhooks = Webhooks { url: Some(url), secret: WEBHOOK_SECRET.into() };
        tokio::spawn(run_webhooks(self.ledger.clone(), webhooks));
    }

    /// Waits until every webhook the provider queued was delivered and acknowledged (a 2xx),
    /// duplicates included: after this, nothing more is on its way to the app. Returns how
    /// many deliveries were made.
    pub async fn all_webhooks_delivered(&self) -> i64 {
        let count = |sql: &'static str| async move {
            sqlx::query_scalar::<_, i64>(sql).fetch_one(self.database.pool()).await.unwrap()
        };
        for _ in 0..600 {
            if count("SELECT count(*) FROM psp_webhooks WHERE delivered_at IS NULL").await == 0 {
                return count("SELECT count(*) FROM psp_webhooks").await;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the provider's webhooks were not all delivered within 30 s");
    }

    /// The payment intents of `order_id` in the provider's ledger.
    pub async fn intents_of(&self, order_id: &str) -> Vec<Value> {
        let url = format!("{}/v1/payment_intents?order_id={order_id}", self.url);
        let body: Value = self.http.get(url).send().await.unwrap().json().await.unwrap();
        body["data"].as_array().cloned().unwrap_or_default()
    }

    /// The one intent of `order_id`.
    pub async fn intent_of(&self, order_id: &str) -> Value {
        let intents = self.intents_of(order_id).await;
        assert_eq!(intents.len(), 1, "one payment per order: {intents:?}");
        intents[0].clone()
    }

    /// The customer's answer, as the dashboard gives it (`POST …/confirm`).
    pub async fn confirm(&self, intent_id: &str, succeed: bool) -> u16 {
        let url = format!("{}/v1/payment_intents/{intent_id}/confirm", self.url);
        let response = self.http.post(url).json(&json!({"succeed": succeed})).send().await.unwrap();
        response.status().as_u16()
    }
}
