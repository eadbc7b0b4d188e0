//! The provider's background work: deciding the customers' confirmations when they are due,
//! and delivering webhook events to the merchant until it answers 2xx, signed with the shared
//! secret (`orderflow_providers::webhook_signature`). Both live in the ledger, so a provider
//! killed mid-way picks up where it was.

use crate::ledger::{Delivery, Ledger};
use orderflow_providers::webhook_signature::{SIGNATURE_HEADER, sign};
use std::time::Duration;

/// Where and how events are delivered.
#[derive(Debug, Clone)]
pub struct Webhooks {
    /// The merchant's endpoint (`PSP_WEBHOOK_URL`); `None`: events wait in the outbox.
    pub url: Option<String>,
    /// `PAYMENT_WEBHOOK_SECRET`, shared with the merchant.
    pub secret: String,
}

/// How long a delivery may take before it is tried again.
const LEASE: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(100);
/// Deliveries sent at once.
const BATCH: i64 = 64;

/// Runs until the process ends.
pub async fn run(ledger: Ledger, webhooks: Webhooks) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("an HTTP client");
    loop {
        if let Err(e) = ledger.decide_due_confirmations().await {
            tracing::warn!(error = %e, "could not decide the due confirmations");
        }
        let mut backlog = false;
        if let Some(url) = &webhooks.url {
            match ledger.lease_webhooks(LEASE, BATCH).await {
                Ok(due) => {
                    // A full batch: more are due, go on without pausing.
                    backlog = due.len() == BATCH as usize;
                    let sends =
                        due.into_iter().map(|d| deliver(&http, &ledger, url, &webhooks.secret, d));
                    futures::future::join_all(sends).await;
                }
                Err(e) => tracing::warn!(error = %e, "could not read the webhook outbox"),
            }
        }
        if !backlog {
            tokio::time::sleep(POLL).await;
        }
    }
}

/// One attempt; a failure is retried with backoff (0.2 s doubling, at most a minute apart).
async fn deliver(
    http: &reqwest::Client,
    ledger: &Ledger,
    url: &str,
    secret: &str,
    event: Delivery,
) {
    let timestamp = chrono::Utc::now().timestamp();
    let signature = sign(secret.as_bytes(), timestamp, event.payload.as_bytes());
    let sent = http
        .post(url)
        .header("content-type", "application/json")
        .header(SIGNATURE_HEADER, signature)
        .body(event.payload.clone())
        .send()
        .await;
    let result = match sent {
        Ok(response) if response.status().is_success() => ledger.delivered(event.seq).await,
        outcome => {
            let why = match outcome {
                Ok(response) => format!("HTTP {}", response.status()),
                Err(e) => e.to_string(),
            };
            let doublings = event.attempts.clamp(1, 10).unsigned_abs() - 1;
            let backoff =
                (Duration::from_millis(200) * 2u32.pow(doublings)).min(Duration::from_secs(60));
            tracing::debug!(seq = event.seq, attempts = event.attempts, %why, "webhook not accepted; retrying");
            ledger.retry_later(event.seq, backoff).await
        }
    };
    if let Err(e) = result {
        tracing::warn!(error = %e, "could not record a webhook delivery");
    }
}
