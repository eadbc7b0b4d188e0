//! What people who run OrderFlow rely on: the API description, the read API, admin restock,
//! metrics, readiness, request ids, the dashboard.

use crate::support::{ADMIN_KEY, TestApp, order_of, readme_order};
use orderflow::config::SimulationConfig;
use orderflow_api::{OrderDetail, OrderPage};
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// Every operation of the API, as `METHOD /path`.
const API: [&str; 16] = [
    "GET /api/orders",
    "POST /api/orders",
    "GET /api/orders/status",
    "POST /api/orders/cancel",
    "GET /api/orders/state",
    "GET /api/orders/{order_id}",
    "GET /api/products",
    "GET /api/products/{id}",
    "POST /api/products/{id}/restock",
    "POST /api/webhooks/payments",
    "GET /api/admin/stuck-orders",
    "GET /live",
    "GET /health",
    "GET /ready",
    "GET /metrics",
    "GET /dashboard",
];

#[tokio::test]
async fn the_served_api_description_and_the_routes_agree() {
    let app = TestApp::spawn().await;
    let (code, doc) = app.get_json("/api/openapi.json").await;
    assert_eq!(code, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "OpenAPI 3.1: {}", doc["openapi"]);

    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            documented.insert(format!("{} {path}", method.to_uppercase()));
            // Every operation documents its errors as problem+json where it has any.
            for (status, response) in operation["responses"].as_object().unwrap() {
                // A shared answer is a reference to `components/responses`.
                let response = match response["$ref"].as_str() {
                    Some(shared) => {
                        let name = shared.trim_start_matches("#/components/responses/");
                        &doc["components"]["responses"][name]
                    }
                    None => response,
                };
                if status.starts_with('4') {
                    assert!(
                        response["content"].get("application/problem+json").is_some(),
                        "{method} {path} {status} is not documented as problem+json"
                    );
                }
            }
            // And the route is really there: not the router's 404 or 405.
            let url = app.url(
                &path
                    .replace("{order_id}", &uuid::Uuid::nil().to_string())
                    .replace("{id}", "prod-001"),
            );
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let response = app.http.request(method.clone(), url).send().await.unwrap();
            let status = response.status().as_u16();
            let body = response.text().await.unwrap_or_default();
            assert_ne!(status, 405, "{method} {path} is documented but not routed");
            assert!(
                !body.contains("There is nothing at this path"),
                "{method} {path} is documented but not routed"
            );
        }
    }
    let expected: BTreeSet<String> = API.iter().map(|s| s.to_string()).collect();
    assert_eq!(documented, expected, "the API description and the API differ");

    let docs = app.http.get(app.url("/docs/")).send().await.unwrap();
    assert_eq!(docs.status(), 200);
    assert!(docs.text().await.unwrap().to_lowercase().contains("swagger"));
}

#[tokio::test]
async fn orders_are_listed_newest_first_with_filters_and_cursors() {
    let app = TestApp::spawn().await;
    let mut placed = Vec::new();
    for customer in ["alice", "bob", "alice", "alice"] {
        let mut body = order_of("prod-003", 1, "249.99");
        body["customer_id"] = customer.into();
        placed.push(app.place(&body).await);
    }
    for id in &placed {
        app.outcome(*id).await;
    }

    let (code, page) = app.get_json("/api/orders?customer_id=alice&limit=2").await;
    assert_eq!(code, 200, "{page}");
    let page: OrderPage = serde_json::from_value(page).unwrap();
    assert_eq!(page.orders.len(), 2);
    assert_eq!(page.orders[0].workflow_id, placed[3].to_string(), "newest first");
    assert_eq!(page.orders[1].workflow_id, placed[2].to_string());
    let cursor = page.next_cursor.expect("a next page");
    let (_, next) =
        app.get_json(&format!("/api/orders?customer_id=alice&limit=2&cursor={cursor}")).await;
    let next: OrderPage = serde_json::from_value(next).unwrap();
    assert_eq!(
        next.orders.iter().map(|o| o.workflow_id.clone()).collect::<Vec<_>>(),
        [placed[0].to_string()]
    );
    assert!(next.next_cursor.is_none(), "the last page");

    let (_, completed) = app.get_json("/api/orders?status=completed").await;
    assert_eq!(completed["orders"].as_array().unwrap().len(), 4);
    let (_, none) = app.get_json("/api/orders?status=cancelled").await;
    assert_eq!(none["orders"].as_array().unwrap().len(), 0);
    for bad in ["status=shipped", "limit=0", "limit=101", "cursor=nope", "customer_id=a%20b"] {
        let (code, body) = app.get_json(&format!("/api/orders?{bad}")).await;
        assert_eq!(code, 400, "{bad}: {body}");
    }
}

#[tokio::test]
async fn one_order_in_full_with_its_timeline() {
    let app = TestApp::spawn().await;
    let workflow_id = app.place(&readme_order()).await;
    app.outcome(workflow_id).await;
    let (code, body) = app.get_json(&format!("/api/orders/{}", workflow_id.order_id())).await;
    assert_eq!(code, 200, "{body}");
    let detail: OrderDetail = serde_json::from_value(body).unwrap();
    assert_eq!(detail.order.status.as_str(), "completed");
    assert_eq!(detail.items.len(), 1);
    assert_eq!(detail.items[0].line_total.to_string(), "999.99");
    let payment = detail.payment.expect("a payment");
    assert_eq!(
        (payment.status.as_str(), payment.amount.to_string().as_str()),
        ("captured", "999.99")
    );
    assert_eq!(detail.notifications[0].status, "sent");
    let events: Vec<&str> = detail.timeline.iter().map(|e| e.event.as_str()).collect();
    for expected in ["order created", "stock reserved", "payment captured", "order completed"] {
        assert!(events.contains(&expected), "{expected} missing from {events:?}");
    }
    assert!(detail.timeline.windows(2).all(|w| w[0].at <= w[1].at), "in time order");

    for unknown in [uuid::Uuid::now_v7().to_string(), "not-a-uuid".to_owned()] {
        let (code, _) = app.get_json(&format!("/api/orders/{unknown}")).await;
        assert_eq!(code, 404, "{unknown}");
    }
}

#[tokio::test]
async fn restocking_needs_the_admin_key() {
    let app = TestApp::spawn().await;
    let restock = |key: Option<&'static str>, product: &'static str, quantity: Value| {
        let mut request = app
            .http
            .post(app.url(&format!("/api/products/{product}/restock")))
            .json(&json!({"quantity": quantity}));
        if let Some(key) = key {
            request = request.header("X-API-Key", key);
        }
        request.send()
    };
    let before = app.stock("prod-002").await;
    assert_eq!(restock(None, "prod-002", json!(5)).await.unwrap().status(), 401);
    assert_eq!(restock(Some("wrong"), "prod-002", json!(5)).await.unwrap().status(), 401);
    assert_eq!(app.stock("prod-002").await, before, "nothing changed");

    let response = restock(Some(ADMIN_KEY), "prod-002", json!(5)).await.unwrap();
    assert_eq!(response.status(), 200);
    let product: Value = response.json().await.unwrap();
    assert_eq!(product["available"], before.0 + 5);
    assert_eq!(app.stock("prod-002").await.0, before.0 + 5);

    assert_eq!(restock(Some(ADMIN_KEY), "prod-999", json!(5)).await.unwrap().status(), 404);
    for bad in [json!(0), json!(-1), json!(1_000_001), json!("5")] {
        assert_eq!(
            restock(Some(ADMIN_KEY), "prod-002", bad.clone()).await.unwrap().status(),
            422,
            "{bad}"
        );
    }
}

#[tokio::test]
async fn without_an_admin_key_configured_the_admin_endpoints_are_disabled() {
    use orderflow_api::{ApiContext, Orchestrator, router};
    let app = TestApp::spawn().await;
    let ctx = ApiContext::new(
        app.store.clone(),
        Orchestrator::new(app.temporal.clone(), "unused", app.database_id),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router(ctx)).await });
    let response = reqwest::Client::new()
        .post(format!("http://{address}/api/products/prod-001/restock"))
        .header("X-API-Key", "")
        .json(&json!({"quantity": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert!(response.text().await.unwrap().contains("ADMIN_API_KEY"));
}

#[tokio::test]
async fn metrics_count_requests_and_orders() {
    let app = TestApp::spawn().await;
    let ok = app.place(&readme_order()).await;
    let declined = app.place(&order_of("prod-006", 6, "1999.99")).await;
    app.outcome(ok).await;
    app.outcome(declined).await;
    let _ = app.get_json("/api/products").await;

    let response = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    // The recorder is per process and tests share it: check presence, not exact counts.
    for expected in [
        r#"orderflow_http_requests_total{route="/api/orders",method="POST",status="201"}"#,
        r#"orderflow_http_request_duration_seconds_bucket{route="/api/products",method="GET",status="200""#,
        "orderflow_orders_started_total",
        "orderflow_orders_completed_total",
        r#"orderflow_orders_failed_total{error_code="payment_declined"}"#,
        "orderflow_payment_declines_total",
        r#"orderflow_step_duration_seconds_bucket{step="reserve_stock",outcome="ok""#,
    ] {
        assert!(text.contains(expected), "{expected} missing from /metrics");
    }
}

#[tokio::test]
async fn ready_means_a_worker_is_polling() {
    let mut app = TestApp::spawn_without_worker(SimulationConfig::default()).await;
    let (code, body) = app.get_json("/ready").await;
    assert_eq!(code, 503, "{body}");
    assert_eq!(body["workers"]["status"], "down");
    assert_eq!(app.get_json("/health").await.0, 200, "healthy, just not ready");

    app.start_worker();
    // A liveness bound: the worker connects and polls within seconds; a minute on a busy host.
    let mut ready = false;
    for _ in 0..600 {
        if app.get_json("/ready").await.0 == 200 {
            ready = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(ready, "ready once a worker polls");
}

#[tokio::test]
async fn requests_carry_an_id_that_is_returned() {
    let app = TestApp::spawn().await;
    let response = app.http.get(app.url("/health")).send().await.unwrap();
    let generated = response.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(generated.len(), 36, "a UUID: {generated}");
    let response = app
        .http
        .get(app.url("/health"))
        .header("x-request-id", "trace-me-42")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "trace-me-42");
}

#[tokio::test]
async fn the_dashboard_is_served_with_its_links() {
    let app = TestApp::spawn().await;
    let page = app.http.get(app.url("/dashboard")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("http://localhost:8233") && !html.contains("{{"),
        "placeholders filled in"
    );
    let root =
        reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let response = root.get(app.url("/")).send().await.unwrap();
    assert_eq!(response.headers()["location"], "/dashboard");
}

#[tokio::test]
async fn the_temporal_sdks_worker_metrics_are_on_metrics_beside_the_services() {
    let app = TestApp::spawn().await;
    let id = app.place(&readme_order()).await;
    app.outcome(id).await;

    // This app's worker, by its task queue (the SDK's meter is per process, shared by tests).
    // The worker counts a workflow completed once the server has answered its last task, a
    // moment after the result is readable: wait for that.
    let queue = format!("task_queue=\"{}\"", app.task_queue());
    let mut text = String::new();
    for _ in 0..300 {
        text = app.get_text("/metrics").await.1;
        let counted =
            |l: &&str| l.starts_with("temporal_workflow_completed_total") && l.contains(&queue);
        if text.lines().any(|l| counted(&l)) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(text.contains("orderflow_orders_completed_total"), "the service's own metrics");
    for metric in [
        "temporal_workflow_completed_total",
        "temporal_workflow_task_schedule_to_start_latency_seconds_bucket",
        "temporal_workflow_task_execution_latency_seconds_bucket",
        "temporal_local_activity_execution_latency_seconds_bucket",
        "temporal_worker_task_slots_available",
        "temporal_num_pollers",
    ] {
        let ours = text.lines().any(|l| l.starts_with(metric) && l.contains(&queue));
        assert!(ours, "{metric} of this worker ({queue}) missing from /metrics");
    }
    assert!(text.lines().any(|l| l.starts_with("temporal_sticky_cache_size")));
}
