//! Webhook faults: what an attacker could send, and genuine answers arriving late or twice.

use super::Injected;
use crate::cluster::Cluster;
use anyhow::Context;
use orderflow_providers::webhook_signature::{SIGNATURE_HEADER, sign};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::json;

const PATH: &str = "/api/webhooks/payments";

fn event(event_id: &str, payment_id: &str, order_id: &str) -> String {
    claim(event_id, "payment_intent.authorized", payment_id, order_id)
}

fn claim(event_id: &str, kind: &str, payment_id: &str, order_id: &str) -> String {
    json!({"id": event_id, "type": kind, "created": 0,
           "data": {"id": payment_id, "order_id": order_id}})
    .to_string()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Orders of the run with a payment at the provider: (order id, payment id), a random sample.
async fn paid_orders(
    cluster: &Cluster,
    ended: bool,
    limit: i64,
) -> anyhow::Result<Vec<(String, String)>> {
    let rows = sqlx::query!(
        r#"SELECT o.id::text AS "order_id!", p.payment_id AS "payment_id!"
             FROM orders o JOIN payments p ON p.order_id = o.id
            WHERE p.payment_id IS NOT NULL
              AND (o.status IN ('completed', 'failed', 'cancelled')) = $1
            ORDER BY random() LIMIT $2"#,
        ended,
        limit
    )
    .fetch_all(cluster.store.pool())
    .await?;
    Ok(rows.into_iter().map(|r| (r.order_id, r.payment_id)).collect())
}

/// Sends forged webhooks about real orders (still open ones when there are, else any): unsigned,
/// signed with a guessed secret, signed too long ago, and a signature of another body. Every
/// one must be refused with 400; what they claim must never reach an order (the chaos checks
/// would see a capture the provider does not have).
pub(super) async fn forge(cluster: &Cluster, rng: &mut ChaCha8Rng) -> anyhow::Result<Injected> {
    let secret = cluster.webhook_secret.clone().context("the cluster has no provider")?;
    let mut targets = paid_orders(cluster, false, 5).await?;
    if targets.is_empty() {
        targets = paid_orders(cluster, true, 5).await?;
    }
    let http = reqwest::Client::new();
    let (mut refused, mut accepted) = (0, Vec::new());
    for (order_id, payment_id) in &targets {
        let api = &cluster.api_urls[rng.random_range(0..cluster.api_urls.len())];
        let body = event(&format!("evt_forged_{}", rng.random::<u64>()), payment_id, order_id);
        let forgeries = [
            ("unsigned", None),
            ("guessed secret", Some(sign(b"whsec_guess", now(), body.as_bytes()))),
            ("stale", Some(sign(secret.as_bytes(), now() - 3_600, body.as_bytes()))),
            ("another body", Some(sign(secret.as_bytes(), now(), b"{}"))),
        ];
        for (kind, signature) in forgeries {
            let mut request = http
                .post(format!("{api}{PATH}"))
                .header("content-type", "application/json")
                .body(body.clone());
            if let Some(signature) = signature {
                request = request.header(SIGNATURE_HEADER, signature);
            }
            match request.send().await {
                Ok(response) if response.status() == 400 => refused += 1,
                // An API process down (another fault) refuses nothing and accepts nothing.
                Ok(response) if response.status().is_server_error() => {}
                Ok(response) => accepted.push(format!("{kind} → {}", response.status())),
                Err(_) => {}
            }
        }
    }
    let detail = format!("{refused} forged webhooks refused on {} orders", targets.len());
    let violation = if !accepted.is_empty() {
        Some(format!("forged webhooks not refused with 400: {}", accepted.join(", ")))
    } else if refused == 0 && !targets.is_empty() {
        // Every answer a 5xx or no answer: the endpoint was never really tested.
        Some("no forged webhook was refused: the endpoint never answered".to_owned())
    } else {
        None
    };
    Ok(Injected { detail, violation })
}

/// Sends genuine (correctly signed) authorization events for orders that have ended, twice
/// each: a provider's answer that arrives late and is delivered again. Each must be
/// acknowledged; an ended order keeps its outcome, and whatever its payment still held is
/// voided (the settlement checks look at the provider's ledger afterwards).
pub(super) async fn replay_late(
    cluster: &Cluster,
    rng: &mut ChaCha8Rng,
) -> anyhow::Result<Injected> {
    let secret = cluster.webhook_secret.clone().context("the cluster has no provider")?;
    let targets = paid_orders(cluster, true, 10).await?;
    let http = reqwest::Client::new();
    let (mut acknowledged, mut refused) = (0, Vec::new());
    for (order_id, payment_id) in &targets {
        let body = event(&format!("evt_late_{}", rng.random::<u64>()), payment_id, order_id);
        for _ in 0..2 {
            let api = &cluster.api_urls[rng.random_range(0..cluster.api_urls.len())];
            let signature = sign(secret.as_bytes(), now(), body.as_bytes());
            let sent = http
                .post(format!("{api}{PATH}"))
                .header("content-type", "application/json")
                .header(SIGNATURE_HEADER, signature)
                .body(body.clone())
                .send()
                .await;
            match sent {
                Ok(response) if response.status().is_success() => acknowledged += 1,
                Ok(response) if response.status().is_client_error() => {
                    refused.push(format!("{order_id} → {}", response.status()));
                }
                // Down or busy (another fault): a provider would retry.
                _ => {}
            }
        }
    }
    let detail =
        format!("{acknowledged} late answers acknowledged for {} ended orders", targets.len());
    let violation = if !refused.is_empty() {
        Some(format!("genuine late webhooks refused: {}", refused.join(", ")))
    } else if acknowledged == 0 && !targets.is_empty() {
        Some("no late webhook was acknowledged: the endpoint never answered".to_owned())
    } else {
        None
    };
    Ok(Injected { detail, violation })
}

/// Orders waiting for their customer (the provider's intent awaits the customer's action):
/// (order id, payment id), a random sample.
async fn waiting_orders(cluster: &Cluster, limit: i64) -> anyhow::Result<Vec<(String, String)>> {
    let rows = sqlx::query!(
        r#"SELECT o.id::text AS "order_id!", p.payment_id AS "payment_id!"
             FROM orders o JOIN payments p ON p.order_id = o.id
            WHERE p.payment_id IS NOT NULL AND o.status = 'payment'
              AND p.status = 'requires_action'
            ORDER BY random() LIMIT $1"#,
        limit
    )
    .fetch_all(cluster.store.pool())
    .await?;
    Ok(rows.into_iter().map(|r| (r.order_id, r.payment_id)).collect())
}

/// Correctly signed events that are false: an authorization for a waiting order whose customer
/// has not answered (the issue's attack: it must not be acted on, answered 503 "not yet" so
/// that a genuine but early event would be retried); "failed" for a completed order's captured
/// payment; an authorization naming a waiting order with another order's payment; one for an
/// ended order naming a waiting order's payment (believed, it would void that customer's
/// authorization). The last three can never be true: `contradicted`. Anything acted on is a
/// violation (and would show in the ledger checks).
pub(super) async fn lie(cluster: &Cluster, rng: &mut ChaCha8Rng) -> anyhow::Result<Injected> {
    let secret = cluster.webhook_secret.clone().context("the cluster has no provider")?;
    let waiting = waiting_orders(cluster, 6).await?;
    let ended = paid_orders(cluster, true, 3).await?;
    let completed = completed_orders(cluster, 3).await?;
    let mut lies = Vec::new();
    for (order, payment) in &completed {
        lies.push(("a refusal of a captured payment", "payment_intent.failed", payment, order));
    }
    for (i, (order, payment)) in waiting.iter().enumerate() {
        lies.push(("an authorization not given", "payment_intent.authorized", payment, order));
        if let Some((other, _)) = waiting.get((i + 1) % waiting.len()).filter(|_| waiting.len() > 1)
        {
            lies.push(("another order's payment", "payment_intent.authorized", payment, other));
        }
    }
    for ((order, _), (_, payment)) in ended.iter().zip(&waiting) {
        lies.push((
            "a waiting payment for an ended order",
            "payment_intent.authorized",
            payment,
            order,
        ));
    }
    let http = reqwest::Client::new();
    let (mut contradicted, mut believed) = (0, Vec::new());
    for (what, kind, payment, order) in &lies {
        let api = &cluster.api_urls[rng.random_range(0..cluster.api_urls.len())];
        let body = claim(&format!("evt_lie_{}", rng.random::<u64>()), kind, payment, order);
        let signature = sign(secret.as_bytes(), now(), body.as_bytes());
        let sent = http
            .post(format!("{api}{PATH}"))
            .header("content-type", "application/json")
            .header(SIGNATURE_HEADER, signature)
            .body(body)
            .send()
            .await;
        let Ok(response) = sent else { continue };
        let status = response.status();
        let answer: serde_json::Value = response.json().await.unwrap_or_default();
        let not_yet = answer["detail"].as_str().is_some_and(|d| d.contains("does not show"));
        if status.is_server_error() && !not_yet {
            continue; // down or busy (another fault): a provider would retry
        }
        // Had the customer answered meanwhile, the event was true when it was checked, and it
        // is rightly delivered: the provider's ledger must then show the payment authorized.
        let became_true = answer["outcome"] == "delivered"
            && *what == "an authorization not given"
            && authorized_at_the_provider(cluster, payment).await;
        if (status.is_success() && answer["outcome"] == "contradicted") || not_yet || became_true {
            contradicted += 1;
        } else {
            believed.push(format!("{what} ({order}) → {status} {answer}"));
        }
    }
    let detail = format!("{contradicted} of {} lies recognized as contradicted", lies.len());
    let violation = if !believed.is_empty() {
        Some(format!("events the provider contradicts were not refused: {}", believed.join("; ")))
    } else if contradicted == 0 && !lies.is_empty() {
        Some("no lie was answered: the endpoint never answered".to_owned())
    } else {
        None
    };
    Ok(Injected { detail, violation })
}

/// Completed orders and their (captured) payments, a random sample.
async fn completed_orders(cluster: &Cluster, limit: i64) -> anyhow::Result<Vec<(String, String)>> {
    let rows = sqlx::query!(
        r#"SELECT o.id::text AS "order_id!", p.payment_id AS "payment_id!"
             FROM orders o JOIN payments p ON p.order_id = o.id
            WHERE p.payment_id IS NOT NULL AND o.status = 'completed'
            ORDER BY random() LIMIT $1"#,
        limit
    )
    .fetch_all(cluster.store.pool())
    .await?;
    Ok(rows.into_iter().map(|r| (r.order_id, r.payment_id)).collect())
}

/// Whether the provider's ledger shows `payment` authorized (or captured since).
async fn authorized_at_the_provider(cluster: &Cluster, payment: &str) -> bool {
    let Some(provider) = &cluster.provider_url else { return false };
    let url = format!("{provider}/v1/payment_intents/{payment}");
    let Ok(response) = reqwest::get(url).await else { return false };
    let intent: serde_json::Value = response.json().await.unwrap_or_default();
    matches!(intent["status"].as_str(), Some("authorized" | "captured"))
}
