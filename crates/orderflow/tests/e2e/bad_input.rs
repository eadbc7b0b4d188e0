//! Bad input gets a clear 4xx problem+json and changes nothing.

use crate::support::TestApp;
use serde_json::json;

struct Case {
    name: &'static str,
    body: String,
    content_type: Option<&'static str>,
    status: u16,
    /// Words the `detail` must contain, so the client learns what to fix.
    mentions: &'static str,
}

fn case(name: &'static str, body: serde_json::Value, status: u16, mentions: &'static str) -> Case {
    Case { name, body: body.to_string(), content_type: Some("application/json"), status, mentions }
}

fn item(product: &str, quantity: serde_json::Value, price: serde_json::Value) -> serde_json::Value {
    json!({"product_id": product, "name": "x", "quantity": quantity, "price": price})
}

fn cases() -> Vec<Case> {
    let many: Vec<_> = (0..51).map(|i| item(&format!("prod-{i:03}"), json!(1), json!(1))).collect();
    vec![
        Case {
            name: "not JSON",
            body: "{\"customer_id\": ".into(),
            content_type: Some("application/json"),
            status: 400,
            mentions: "JSON",
        },
        Case {
            name: "no content type",
            body: json!({"customer_id": "c", "items": []}).to_string(),
            content_type: None,
            status: 415,
            mentions: "Content-Type",
        },
        Case {
            name: "too large",
            body: format!("{{\"customer_id\": \"{}\"}}", "x".repeat(70 * 1024)),
            content_type: Some("application/json"),
            status: 413,
            mentions: "",
        },
        case("a JSON array", json!([1, 2]), 422, ""),
        case(
            "missing customer_id",
            json!({"items": [item("prod-001", json!(1), json!(999.99))]}),
            422,
            "customer_id",
        ),
        case("missing items", json!({"customer_id": "c"}), 422, "items"),
        case(
            "missing quantity",
            json!({"customer_id": "c", "items": [{"product_id": "prod-001", "price": 999.99}]}),
            422,
            "quantity",
        ),
        case(
            "missing price",
            json!({"customer_id": "c", "items": [{"product_id": "prod-001", "quantity": 1}]}),
            422,
            "price",
        ),
        case(
            "customer_id of the wrong type",
            json!({"customer_id": 7, "items": [item("prod-001", json!(1), json!(999.99))]}),
            422,
            "customer_id",
        ),
        case(
            "quantity of the wrong type",
            json!({"customer_id": "c", "items": [item("prod-001", json!("one"), json!(999.99))]}),
            422,
            "quantity",
        ),
        case(
            "fractional quantity",
            json!({"customer_id": "c", "items": [item("prod-001", json!(1.5), json!(999.99))]}),
            422,
            "quantity",
        ),
        case(
            "price of the wrong type",
            json!({"customer_id": "c", "items": [item("prod-001", json!(1), json!(true))]}),
            422,
            "price",
        ),
        case(
            "empty customer_id",
            json!({"customer_id": "", "items": [item("prod-001", json!(1), json!(999.99))]}),
            422,
            "customer_id",
        ),
        case(
            "customer_id with spaces",
            json!({"customer_id": "a b", "items": [item("prod-001", json!(1), json!(999.99))]}),
            422,
            "customer_id",
        ),
        case("empty items", json!({"customer_id": "c", "items": []}), 422, "items"),
        case(
            "zero quantity",
            json!({"customer_id": "c", "items": [item("prod-001", json!(0), json!(999.99))]}),
            422,
            "quantity",
        ),
        case(
            "negative quantity",
            json!({"customer_id": "c", "items": [item("prod-001", json!(-2), json!(999.99))]}),
            422,
            "quantity",
        ),
        case(
            "absurd quantity",
            json!({"customer_id": "c", "items": [item("prod-001", json!(1_000_000), json!(999.99))]}),
            422,
            "quantity",
        ),
        case(
            "huge quantity",
            json!({"customer_id": "c", "items": [item("prod-001", json!(u64::MAX), json!(999.99))]}),
            422,
            "quantity",
        ),
        case("too many items", json!({"customer_id": "c", "items": many}), 422, "at most 50"),
        case(
            "the same product twice",
            json!({"customer_id": "c", "items": [item("prod-001", json!(1), json!(999.99)), item("prod-001", json!(1), json!(999.99))]}),
            422,
            "more than once",
        ),
        case(
            "unknown product",
            json!({"customer_id": "c", "items": [item("prod-999", json!(1), json!(1))]}),
            422,
            "prod-999",
        ),
        case(
            "a cheaper price than the catalog's",
            json!({"customer_id": "c", "items": [item("prod-001", json!(1), json!(0.01))]}),
            422,
            "999.99",
        ),
        case(
            "a negative price",
            json!({"customer_id": "c", "items": [item("prod-001", json!(1), json!(-999.99))]}),
            422,
            "price",
        ),
        case(
            "fractions of a cent",
            json!({"customer_id": "c", "items": [item("prod-001", json!(1), json!(999.989))]}),
            422,
            "decimal places",
        ),
        case(
            "an absurd price",
            json!({"customer_id": "c", "items": [item("prod-001", json!(1), json!(1e300))]}),
            422,
            "price",
        ),
    ]
}

#[tokio::test]
async fn every_bad_order_is_refused_with_a_clear_problem_and_nothing_is_written() {
    let app = TestApp::spawn().await;
    let products_before = app.get_json("/api/products").await.1;
    for case in cases() {
        let mut request = app
            .http
            .post(app.url("/api/orders"))
            .header("Idempotency-Key", format!("bad-{}", case.name.replace(' ', "-")))
            .body(case.body.clone());
        if let Some(content_type) = case.content_type {
            request = request.header("Content-Type", content_type);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let content_type =
            response.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned());
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        assert_eq!(status, case.status, "{}: {body}", case.name);
        assert_eq!(content_type.as_deref(), Some("application/problem+json"), "{}", case.name);
        assert_eq!(body["status"], case.status, "{}", case.name);
        let detail = body["detail"].as_str().unwrap_or_default();
        assert!(
            detail.contains(case.mentions),
            "{}: detail {detail:?} should mention {:?}",
            case.name,
            case.mentions
        );
        assert!(!detail.to_lowercase().contains("sql"), "{}: {detail}", case.name);
    }
    assert_eq!(app.count("SELECT count(*) FROM idempotency_keys").await, 0);
    assert_eq!(app.get_json("/api/products").await.1, products_before);
    // A sentinel: a good order placed after every bad one. Workflow tasks are handed out first
    // come, first served (or run at once when started eagerly), and an order's row is written
    // in its first task: once the sentinel has finished, any workflow a bad request had
    // started would have written its row too.
    let sentinel = app.place(&crate::support::readme_order()).await;
    app.outcome(sentinel).await;
    assert_eq!(app.count("SELECT count(*) FROM orders").await, 1, "only the sentinel");
    assert_eq!(app.get_json("/health").await.0, 200, "still healthy");
}

#[tokio::test]
async fn unknown_paths_and_methods_are_problems_too() {
    let app = TestApp::spawn().await;
    let response = app.http.get(app.url("/api/nope")).send().await.unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    let response = app.http.delete(app.url("/api/orders")).send().await.unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["content-type"], "application/problem+json");
}
