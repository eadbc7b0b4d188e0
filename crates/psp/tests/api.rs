//! The simulated provider over HTTP, as OrderFlow and the tests will reach it, on a free port
//! against a fresh PostgreSQL database.

use orderflow_domain::Money;
use orderflow_providers::webhook_signature::verify;
use orderflow_psp::{ConfirmOutcome, Ledger, Outbox, PspConfig, Webhooks, router, run_webhooks};
use orderflow_store::testing::{TestDatabase, fresh_database, server_from_env};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;

struct Provider {
    url: String,
    http: reqwest::Client,
    db: TestDatabase,
}

/// The knobs a test turns.
#[derive(Clone)]
struct Knobs {
    action_required_rate: f64,
    outage_rate: f64,
    confirm_outcome: ConfirmOutcome,
    duplicate_rate: f64,
    webhook_url: Option<String>,
}

impl Default for Knobs {
    fn default() -> Self {
        Self {
            action_required_rate: 0.0,
            outage_rate: 0.0,
            confirm_outcome: ConfirmOutcome::Succeed,
            duplicate_rate: 0.0,
            webhook_url: None,
        }
    }
}

const SECRET: &str = "whsec_test";

impl Provider {
    async fn start(action_required_rate: f64, outage_rate: f64) -> Self {
        Self::with(Knobs { action_required_rate, outage_rate, ..Knobs::default() }).await
    }

    async fn with(knobs: Knobs) -> Self {
        let db = fresh_database(&server_from_env()).await;
        let outbox = Outbox { delay: Duration::ZERO, duplicate_rate: knobs.duplicate_rate };
        let ledger = Ledger::new(db.pool().clone(), outbox);
        ledger.install().await.unwrap();
        let config = PspConfig {
            decline_above: Money::parse("limit", Decimal::from(10_000)).unwrap(),
            action_required_rate: knobs.action_required_rate,
            outage_rate: knobs.outage_rate,
            confirm_delay: Duration::from_millis(100),
            confirm_outcome: knobs.confirm_outcome,
            authorization_ttl: None,
        };
        let webhooks = Webhooks { url: knobs.webhook_url, secret: SECRET.into() };
        tokio::spawn(run_webhooks(ledger.clone(), webhooks));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/v1/payment_intents", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router(ledger, config)).await });
        Self { url, http: reqwest::Client::new(), db }
    }

    async fn post(&self, path: &str, body: Value, key: Option<&str>) -> (u16, Value) {
        let mut request = self.http.post(format!("{}{path}", self.url)).json(&body);
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        let response = request.send().await.unwrap();
        (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let response = self.http.get(format!("{}{path}", self.url)).send().await.unwrap();
        (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
    }

    /// Creates the intent of `order` and returns its id.
    async fn intent(&self, order: &str, amount: &str) -> String {
        let (code, body) = self.post("", json!({"order_id": order, "amount": amount}), None).await;
        assert_eq!(code, 201, "{body}");
        body["id"].as_str().unwrap().to_owned()
    }
}

#[tokio::test]
async fn an_intent_is_authorized_captured_and_refunded_once_whatever_is_retried() {
    let psp = Provider::start(0.0, 0.0).await;
    let id = psp.intent("order-1", "999.99").await;
    // The order id is the idempotency key: asking again is the same intent...
    let (code, again) =
        psp.post("", json!({"order_id": "order-1", "amount": "999.99"}), None).await;
    assert_eq!((code, again["id"].as_str()), (200, Some(id.as_str())));
    // ...and asking again for another amount is refused, not a second intent.
    let (code, _) = psp.post("", json!({"order_id": "order-1", "amount": "5.00"}), None).await;
    assert_eq!(code, 409);

    let (code, body) = psp.post(&format!("/{id}/authorize"), json!({}), None).await;
    assert_eq!((code, body["status"].as_str()), (200, Some("authorized")));
    for _ in 0..2 {
        let (code, body) = psp.post(&format!("/{id}/capture"), json!({}), None).await;
        assert_eq!((code, body["status"].as_str()), (200, Some("captured")), "{body}");
        assert_eq!(body["captured"], "999.99");
    }
    let (code, _) = psp.post(&format!("/{id}/void"), json!({}), None).await;
    assert_eq!(code, 409, "captured money is refunded, not voided");

    let partial = json!({"amount": "100.00"});
    for _ in 0..2 {
        let (code, body) = psp.post(&format!("/{id}/refund"), partial.clone(), Some("r-1")).await;
        assert_eq!((code, body["refunded"].as_str()), (200, Some("100.00")), "{body}");
    }
    let (code, body) = psp.post(&format!("/{id}/refund"), json!({}), Some("r-2")).await;
    assert_eq!((code, body["status"].as_str()), (200, Some("refunded")), "{body}");
    assert_eq!(body["refunded"], "999.99");
    let (code, _) = psp.post(&format!("/{id}/refund"), partial, None).await;
    assert_eq!(code, 400, "a refund needs an idempotency key");
    let (code, _) =
        psp.post(&format!("/{id}/refund"), json!({"amount": "5.00"}), Some("r-1")).await;
    assert_eq!(code, 409, "a key names one refund");

    let (code, ledger) = psp.get("?order_id=order-1").await;
    assert_eq!(code, 200);
    assert_eq!(ledger["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn declines_confirmations_and_voids_follow_the_providers_rules() {
    let psp = Provider::start(1.0, 0.0).await;
    let declined = psp.intent("order-big", "10000.01").await;
    let (_, body) = psp.post(&format!("/{declined}/authorize"), json!({}), None).await;
    assert_eq!(body["status"], "failed");
    assert!(body["failure_reason"].as_str().unwrap().contains("limit"));

    // Every payment needs the customer's action here.
    let id = psp.intent("order-2", "10.00").await;
    let (_, body) = psp.post(&format!("/{id}/authorize"), json!({}), None).await;
    assert_eq!(body["status"], "requires_action");
    let (code, _) = psp.post(&format!("/{id}/capture"), json!({}), None).await;
    assert_eq!(code, 409, "nothing to capture before the customer confirms");
    for _ in 0..2 {
        let (code, body) =
            psp.post(&format!("/{id}/confirm"), json!({"succeed": true}), None).await;
        assert_eq!((code, body["status"].as_str()), (200, Some("authorized")), "retried alike");
    }
    let (_, body) = psp.post(&format!("/{id}/void"), json!({}), None).await;
    assert_eq!(body["status"], "voided");
    let (code, _) = psp.post(&format!("/{id}/capture"), json!({}), None).await;
    assert_eq!(code, 409, "a voided authorization cannot be captured");

    let (code, _) = psp.get("/pi_unknown").await;
    assert_eq!(code, 404);
    let (code, _) = psp.get("/pi_%00").await;
    assert_eq!(code, 404, "decided before any query");
    for bad in [
        json!({"order_id": "a\u{0}b", "amount": "1.00"}),
        json!({"order_id": "ok", "amount": "0.00"}),
        json!({"order_id": "ok", "amount": "1.00", "currency": "EURO"}),
        json!({"order_id": "", "amount": "1.00"}),
    ] {
        assert_eq!(psp.post("", bad.clone(), None).await.0, 400, "{bad}");
    }
    let (_, all) = psp.get("").await;
    assert_eq!(all["data"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn an_outage_answers_503_and_does_nothing() {
    let psp = Provider::start(0.0, 1.0).await;
    let (code, body) = psp.post("", json!({"order_id": "order-3", "amount": "1.00"}), None).await;
    assert_eq!(code, 503, "{body}");
    let (_, ledger) = psp.get("").await;
    assert_eq!(ledger["data"].as_array().unwrap().len(), 0, "nothing was created");
}

/// A merchant's webhook endpoint that refuses its first delivery (503) and records the rest.
async fn merchant() -> (String, Arc<Mutex<Vec<(String, String)>>>) {
    let received: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let calls = Arc::new(Mutex::new(0u32));
    let record = received.clone();
    let handler = move |headers: axum::http::HeaderMap, body: String| {
        let (record, calls) = (record.clone(), calls.clone());
        async move {
            let mut calls = calls.lock().unwrap();
            *calls += 1;
            if *calls == 1 {
                return axum::http::StatusCode::SERVICE_UNAVAILABLE;
            }
            let signature = headers["payment-signature"].to_str().unwrap().to_owned();
            record.lock().unwrap().push((signature, body));
            axum::http::StatusCode::OK
        }
    };
    let app = axum::Router::new().route("/hook", axum::routing::post(handler));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, received)
}

#[tokio::test]
async fn a_confirmation_is_delivered_as_a_signed_webhook_until_accepted_and_sometimes_twice() {
    let (url, received) = merchant().await;
    let knobs = Knobs {
        action_required_rate: 1.0,
        duplicate_rate: 1.0,
        webhook_url: Some(url),
        ..Knobs::default()
    };
    let psp = Provider::with(knobs).await;
    let id = psp.intent("order-w", "10.00").await;
    let (_, body) = psp.post(&format!("/{id}/authorize"), json!({}), None).await;
    assert_eq!(body["status"], "requires_action");

    // The customer confirms after 100 ms; the first delivery is refused and retried; every
    // event of this run is delivered twice.
    for _ in 0..100 {
        if received.lock().unwrap().len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let received = received.lock().unwrap().clone();
    assert_eq!(received.len(), 2, "the event, and its duplicate: {received:?}");
    let now = chrono::Utc::now().timestamp();
    let mut ids = Vec::new();
    for (signature, body) in &received {
        verify(SECRET.as_bytes(), signature, body.as_bytes(), now).expect("signed");
        let event: Value = serde_json::from_str(body).unwrap();
        assert_eq!(event["type"], "payment_intent.authorized");
        assert_eq!(event["data"]["id"], id.as_str());
        assert_eq!(event["data"]["status"], "authorized");
        ids.push(event["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(ids[0], ids[1], "a duplicate carries the same event id");
    assert_eq!(psp.get(&format!("/{id}")).await.1["status"], "authorized");
}

#[tokio::test]
async fn a_customer_who_never_answers_leaves_the_payment_waiting() {
    let (url, received) = merchant().await;
    let knobs = Knobs {
        action_required_rate: 1.0,
        confirm_outcome: ConfirmOutcome::Never,
        webhook_url: Some(url),
        ..Knobs::default()
    };
    let psp = Provider::with(knobs).await;
    let id = psp.intent("order-n", "10.00").await;
    psp.post(&format!("/{id}/authorize"), json!({}), None).await;
    assert_eq!(psp.get(&format!("/{id}")).await.1["status"], "requires_action");
    // No answer is scheduled, so no event can ever be queued (rather than: none yet).
    let scheduled: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM psp_confirmations) + (SELECT count(*) FROM psp_webhooks)",
    )
    .fetch_one(psp.db.pool())
    .await
    .unwrap();
    assert_eq!(scheduled, 0, "a customer who never answers leaves nothing to decide or send");
    assert!(received.lock().unwrap().is_empty());
    // The merchant gives up: the authorization attempt is voided.
    let (_, body) = psp.post(&format!("/{id}/void"), json!({}), None).await;
    assert_eq!(body["status"], "voided");
}

/// OrderFlow's adapter against the simulator: the calls the saga will make, with the errors it
/// will see.
#[tokio::test]
async fn the_adapter_drives_a_payment_and_tells_refusals_from_outages() {
    use orderflow_providers::ProviderError;
    use orderflow_providers::payment_provider::IntentStatus;
    use orderflow_providers::payment_provider::PaymentProvider;
    let psp = Provider::start(0.0, 0.0).await;
    let base = psp.url.trim_end_matches("/v1/payment_intents").to_owned();
    let provider = PaymentProvider::new(&base, Duration::from_secs(5)).unwrap();
    let amount = Money::parse("amount", Decimal::new(2_500, 2)).unwrap();

    let intent = provider.create("order-a", amount).await.unwrap();
    assert_eq!(provider.create("order-a", amount).await.unwrap().id, intent.id, "same key");
    assert_eq!(
        provider.authorize_intent(&intent.id).await.unwrap().status,
        IntentStatus::Authorized
    );
    let captured = provider.capture_intent(&intent.id).await.unwrap();
    assert_eq!((captured.status, captured.captured), (IntentStatus::Captured, amount));
    assert!(matches!(provider.void_intent(&intent.id).await, Err(ProviderError::Refused(_))));
    for _ in 0..2 {
        let refunded = provider.refund_intent(&intent.id, "order-a-refund").await.unwrap();
        assert_eq!((refunded.status, refunded.refunded), (IntentStatus::Refunded, amount));
    }
    assert!(matches!(provider.get("pi_nope").await, Err(ProviderError::Rejected(_))));

    let down = Provider::start(0.0, 1.0).await;
    let base = down.url.trim_end_matches("/v1/payment_intents").to_owned();
    let provider = PaymentProvider::new(&base, Duration::from_secs(5)).unwrap();
    assert!(matches!(provider.create("order-b", amount).await, Err(ProviderError::Unavailable(_))));
    let nobody = PaymentProvider::new("http://127.0.0.1:1", Duration::from_secs(5)).unwrap();
    assert!(matches!(nobody.create("order-c", amount).await, Err(ProviderError::Unavailable(_))));
}
