//! Identity and access with `AUTH_MODE=jwt`: every operation × every kind of caller gets the
//! answer docs/api.md's table promises, and nobody sees or touches another customer's order.

use crate::support::{ADMIN_KEY, JWT_SECRET, TestApp, jwt_http, quick_heartbeats, token};
use orderflow::config::SimulationConfig;
use orderflow_api::auth::{NewToken, mint_hs256};
use orderflow_domain::WorkflowId;
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

/// The callers of the matrix.
#[derive(Debug, Clone, Copy)]
enum Caller {
    Anonymous,
    CustomerA,
    CustomerB,
    Operator,
    /// Customer A's token, expired two minutes ago (beyond the clock leeway).
    Expired,
    /// A token for customer A signed with a key the service does not know.
    ForeignKey,
}

const CALLERS: [Caller; 6] = [
    Caller::Anonymous,
    Caller::CustomerA,
    Caller::CustomerB,
    Caller::Operator,
    Caller::Expired,
    Caller::ForeignKey,
];

impl Caller {
    fn token(self) -> Option<String> {
        match self {
            Self::Anonymous => None,
            Self::CustomerA => Some(token("customer-a", &[])),
            Self::CustomerB => Some(token("customer-b", &[])),
            Self::Operator => Some(token("ops-1", &["operator"])),
            Self::Expired => {
                let mut claims = NewToken::new("customer-a", &[], Duration::from_secs(1));
                claims.exp -= 121;
                Some(mint_hs256(&JWT_SECRET.into(), &claims))
            }
            Self::ForeignKey => Some(mint_hs256(
                &"another-secret-of-at-least-32-bytes!".into(),
                &NewToken::new("customer-a", &[], Duration::from_secs(3600)),
            )),
        }
    }
}

async fn call(
    app: &TestApp,
    caller: Caller,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> (u16, reqwest::header::HeaderMap, String) {
    let mut request = app.http.request(method, app.url(path));
    if let Some(token) = caller.token() {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.text().await.unwrap())
}

fn order_for(customer: Option<&str>) -> Value {
    let mut order = json!({
        "items": [{"product_id": "prod-003", "name": "AirPods Pro", "quantity": 1, "price": 249.99}]
    });
    if let Some(customer) = customer {
        order["customer_id"] = json!(customer);
    }
    order
}

async fn place(app: &TestApp, caller: Caller) -> (WorkflowId, String) {
    let (status, _, body) =
        call(app, caller, Method::POST, "/api/orders", Some(&order_for(None))).await;
    assert_eq!(status, 201, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    let workflow = WorkflowId::parse(body["workflow_id"].as_str().unwrap()).unwrap();
    (workflow, body["order_id"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn every_operation_answers_each_kind_of_caller_as_documented() {
    // Payments take a while (heartbeated every 1.6 s, the last time at 6.4 s), so that orders
    // are still cancellable at the end, whatever the machine's load.
    let simulation =
        SimulationConfig { payment_delay: Duration::from_secs(8), ..SimulationConfig::default() };
    let app = TestApp::spawn_configured(simulation, quick_heartbeats(jwt_http())).await;
    let (a_order, a_order_id) = place(&app, Caller::CustomerA).await;
    place(&app, Caller::CustomerB).await;

    use Caller::*;
    // (method, path, body, expected status per caller in CALLERS order:
    //  anonymous, customer A, customer B, operator, expired, foreign key)
    let status = format!("/api/orders/status?workflow_id={a_order}");
    let state = format!("/api/orders/state?workflow_id={a_order}");
    let detail = format!("/api/orders/{a_order_id}");
    let own_order = order_for(Some("customer-a"));
    let one_unit = json!({"quantity": 1});
    let matrix: Vec<(Method, &str, Option<&Value>, [u16; 6])> = vec![
        (Method::POST, "/api/orders", Some(&own_order), [401, 201, 403, 201, 401, 401]),
        (Method::GET, &status, None, [401, 200, 404, 200, 401, 401]),
        (Method::GET, &state, None, [401, 200, 404, 200, 401, 401]),
        (Method::GET, &detail, None, [401, 200, 404, 200, 401, 401]),
        (Method::GET, "/api/orders", None, [401, 200, 200, 200, 401, 401]),
        (Method::GET, "/api/orders?customer_id=customer-b", None, [401, 403, 200, 200, 401, 401]),
        (Method::GET, "/api/products", None, [200, 200, 200, 200, 200, 200]),
        (Method::GET, "/api/products/prod-001", None, [200, 200, 200, 200, 200, 200]),
        (
            Method::POST,
            "/api/products/prod-001/restock",
            Some(&one_unit),
            [401, 403, 403, 200, 401, 401],
        ),
        (Method::GET, "/api/admin/stuck-orders", None, [401, 403, 403, 200, 401, 401]),
        (Method::GET, "/metrics", None, [401, 403, 403, 200, 401, 401]),
        (Method::GET, "/live", None, [200, 200, 200, 200, 200, 200]),
        (Method::GET, "/health", None, [200, 200, 200, 200, 200, 200]),
        (Method::GET, "/ready", None, [200, 200, 200, 200, 200, 200]),
        (Method::GET, "/api/openapi.json", None, [200, 200, 200, 200, 200, 200]),
        (Method::GET, "/docs/", None, [200, 200, 200, 200, 200, 200]),
        (Method::GET, "/dashboard", None, [200, 200, 200, 200, 200, 200]),
    ];
    let mut wrong = Vec::new();
    for (method, path, body, expected) in &matrix {
        for (caller, expected) in CALLERS.iter().zip(expected) {
            let (got, headers, text) = call(&app, *caller, method.clone(), path, *body).await;
            if got != *expected {
                wrong.push(format!(
                    "{method} {path} as {caller:?}: {got}, expected {expected}: {text}"
                ));
            }
            if got == 401 {
                let challenge = headers.get("www-authenticate").and_then(|v| v.to_str().ok());
                assert!(
                    challenge.is_some_and(|c| c.starts_with("Bearer")),
                    "{method} {path}: 401 without WWW-Authenticate: Bearer"
                );
                assert!(text.contains("\"status\":401"), "401 is problem+json: {text}");
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} answers differ from the table:\n{}",
        wrong.len(),
        wrong.join("\n")
    );

    // Cancelling, on fresh orders still in their (slow) payment: everyone else is refused
    // first, then the owner and an operator succeed.
    let (a_order, _) = place(&app, CustomerA).await;
    let cancel_a = format!("/api/orders/cancel?workflow_id={a_order}");
    for (caller, expected) in
        [(Anonymous, 401), (CustomerB, 404), (Expired, 401), (ForeignKey, 401)]
    {
        let (code, _, body) = call(&app, caller, Method::POST, &cancel_a, None).await;
        assert_eq!(code, expected, "cancel A's order as {caller:?}: {body}");
    }
    let (code, _, body) = call(&app, CustomerA, Method::POST, &cancel_a, None).await;
    assert_eq!(code, 202, "the owner cancels: {body}");
    let (b_order, _) = place(&app, CustomerB).await;
    let cancel_b = format!("/api/orders/cancel?workflow_id={b_order}");
    let (code, _, body) = call(&app, Operator, Method::POST, &cancel_b, None).await;
    assert_eq!(code, 202, "an operator cancels anyone's order: {body}");
    for order in [a_order, b_order] {
        assert_eq!(app.outcome(order).await.status.as_str(), "cancelled");
    }
}

#[tokio::test]
async fn customers_see_only_their_own_orders_and_their_keys_are_their_own() {
    let app = TestApp::spawn_jwt().await;
    let (a_order, _) = place(&app, Caller::CustomerA).await;
    let (b_order, _) = place(&app, Caller::CustomerB).await;
    app.outcome(a_order).await;
    app.outcome(b_order).await;

    // Listing, with any filter, shows a customer their own orders only; operators see all.
    for (caller, own) in [(Caller::CustomerA, a_order), (Caller::CustomerB, b_order)] {
        for path in ["/api/orders", "/api/orders?status=completed", "/api/orders?limit=100"] {
            let (code, _, body) = call(&app, caller, Method::GET, path, None).await;
            assert_eq!(code, 200, "{body}");
            let page: Value = serde_json::from_str(&body).unwrap();
            let ids: Vec<&str> = page["orders"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| o["workflow_id"].as_str().unwrap())
                .collect();
            assert_eq!(ids, [own.to_string()], "{caller:?} {path}");
        }
    }
    let (_, _, body) = call(&app, Caller::Operator, Method::GET, "/api/orders", None).await;
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["orders"].as_array().unwrap().len(),
        2
    );

    // The same Idempotency-Key and body from two customers: two orders, neither sees the other's.
    let key = "shared-key-1";
    let mut placed = Vec::new();
    for caller in [Caller::CustomerA, Caller::CustomerB] {
        let response = app
            .http
            .post(app.url("/api/orders"))
            .bearer_auth(caller.token().unwrap())
            .header("Idempotency-Key", key)
            .json(&order_for(None))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "a key is the sender's own");
        placed.push(response.json::<Value>().await.unwrap()["order_id"].clone());
    }
    assert_ne!(placed[0], placed[1]);
}

#[tokio::test]
async fn a_token_is_refused_for_each_way_it_can_be_wrong() {
    let app = TestApp::spawn_jwt().await;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let secret = JWT_SECRET.into();
    let header = |alg: &str| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#))
    };
    let payload = |claims: Value| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims.to_string())
    };
    let cases: Vec<(&str, String)> = vec![
        ("garbage", "not-a-jwt".into()),
        (
            "alg none",
            format!(
                "{}.{}.",
                header("none"),
                payload(json!({"sub": "customer-a", "exp": now + 600}))
            ),
        ),
        ("no exp", mint_without_exp(&secret)),
        (
            "not valid for ten years (nbf)",
            mint_with_claims(
                &secret,
                json!({"sub": "customer-a", "exp": now + 600, "nbf": now + 315_360_000}),
            ),
        ),
        (
            "bad sub",
            mint_hs256(&secret, &NewToken::new("customer a/../b", &[], Duration::from_secs(600))),
        ),
        ("empty bearer", String::new()),
    ];
    for (why, token) in cases {
        let response = app
            .http
            .get(app.url("/api/orders"))
            .header("Authorization", format!("Bearer {token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{why}");
    }
    // Basic credentials are not a bearer token.
    let response = app
        .http
        .get(app.url("/api/orders"))
        .basic_auth("customer-a", Some("x"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

fn mint_without_exp(secret: &secrecy::SecretString) -> String {
    mint_with_claims(secret, json!({"sub": "customer-a"}))
}

fn mint_with_claims(secret: &secrecy::SecretString, claims: Value) -> String {
    use secrecy::ExposeSecret;
    let key = jsonwebtoken::EncodingKey::from_secret(secret.expose_secret().as_bytes());
    jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).unwrap()
}

#[tokio::test]
async fn the_admin_key_still_restocks_in_jwt_mode() {
    let app = TestApp::spawn_jwt().await;
    let restock = |key: &'static str| {
        app.http
            .post(app.url("/api/products/prod-002/restock"))
            .header("X-API-Key", key)
            .json(&json!({"quantity": 5}))
            .send()
    };
    assert_eq!(restock(ADMIN_KEY).await.unwrap().status(), 200);
    assert_eq!(restock("wrong-key-wrong-key").await.unwrap().status(), 401);
}

#[tokio::test]
async fn tokens_of_an_identity_provider_are_checked_against_its_jwks() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    // The identity provider: its key set, counting how often it is fetched.
    let fetches = Arc::new(AtomicUsize::new(0));
    let counter = fetches.clone();
    let jwks = include_str!("fixtures/jwks.json");
    let provider = axum::Router::new().route(
        "/certs",
        axum::routing::get(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            async move { ([("content-type", "application/json")], jwks) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let jwks_url = format!("http://{}/certs", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, provider).await });

    let mut http = jwt_http();
    http.auth.jwks_url = Some(jwks_url);
    http.auth.claims.issuer = Some("https://id.example".into());
    http.auth.claims.audience = Some("orderflow".into());
    let app = TestApp::spawn_configured(SimulationConfig::default(), http).await;
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(include_bytes!("fixtures/jwks-test-key.pem"))
        .unwrap();
    let sign = |kid: &str, iss: &str| {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = Some(kid.into());
        let claims = NewToken {
            iss: Some(iss.into()),
            ..NewToken::new("customer-a", &[], Duration::from_secs(600))
        };
        jsonwebtoken::encode(&header, &claims, &key).unwrap()
    };
    let get = |token: String| app.http.get(app.url("/api/orders")).bearer_auth(token).send();

    assert_eq!(get(sign("test-1", "https://id.example")).await.unwrap().status(), 200);
    assert_eq!(
        get(sign("test-1", "https://evil.example")).await.unwrap().status(),
        401,
        "wrong issuer"
    );
    assert_eq!(fetches.load(Ordering::SeqCst), 1, "the key set is fetched once and kept");
    // A flood of unknown key ids does not become a flood of requests to the provider.
    for i in 0..20 {
        assert_eq!(
            get(sign(&format!("made-up-{i}"), "https://id.example")).await.unwrap().status(),
            401
        );
    }
    assert!(fetches.load(Ordering::SeqCst) <= 2, "{} fetches", fetches.load(Ordering::SeqCst));
    // The HS256 secret still works beside the provider's keys.
    let mut claims = NewToken::new("customer-a", &[], Duration::from_secs(600));
    claims.iss = Some("https://id.example".into());
    claims.aud = Some("orderflow".into());
    assert_eq!(get(mint_hs256(&JWT_SECRET.into(), &claims)).await.unwrap().status(), 200);
}

#[tokio::test]
async fn another_deployments_orders_are_unknown_here() {
    // Two deployments, two databases, one Temporal namespace: the other one's orders are
    // visible to Temporal queries by workflow id, and must be to nobody here.
    let simulation =
        SimulationConfig { payment_delay: Duration::from_secs(3), ..SimulationConfig::default() };
    let theirs = TestApp::spawn_with(simulation).await;
    let ours = TestApp::spawn().await;
    let order = theirs.place(&crate::support::readme_order()).await;
    for path in [
        format!("/api/orders/status?workflow_id={order}"),
        format!("/api/orders/state?workflow_id={order}"),
    ] {
        let (code, body) = ours.get_text(&path).await;
        assert_eq!(code, 404, "{path}: {body}");
    }
    let (code, body) = ours.cancel(order).await;
    assert_eq!(code, 404, "{body}");
    assert_eq!(theirs.outcome(order).await.status.as_str(), "completed", "untouched");
}
