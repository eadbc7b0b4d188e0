//! The order saga's paths, each checked over HTTP, in PostgreSQL and in the workflow's state.

use crate::support::{TestApp, order_of, readme_order};
use orderflow::config::SimulationConfig;
use orderflow_domain::{ErrorCode, OrderStatus, Step, StepStatus};

#[tokio::test]
async fn the_readme_order_completes_and_sells_one_unit() {
    let app = TestApp::spawn().await;
    let before = app.stock("prod-001").await;
    let workflow_id = app.place(&readme_order()).await;

    let state = app.outcome(workflow_id).await;
    assert_eq!(state.status, OrderStatus::Completed);
    assert_eq!(state.total_amount.to_string(), "999.99");
    assert!(state.customer_notified);
    assert!(state.payment_id.as_deref().is_some_and(|id| id.starts_with("pay_")));
    let steps: Vec<(Step, StepStatus)> =
        state.step_history.iter().map(|r| (r.step, r.status)).collect();
    assert_eq!(
        steps,
        [
            Step::CreateOrder,
            Step::ReserveStock,
            Step::ProcessPayment,
            Step::ConfirmOrder,
            Step::NotifyCustomer
        ]
        .map(|s| (s, StepStatus::Completed))
    );
    assert!(state.completed_at.unwrap() >= state.started_at);

    let status = app.status(workflow_id).await;
    assert_eq!(status["status"], "completed");
    assert_eq!(status["workflow_id"], workflow_id.to_string());
    assert_eq!(app.stock("prod-001").await, (before.0 - 1, 0, before.2 + 1));
    let payments = app
        .count("SELECT count(*) FROM payments WHERE status = 'captured' AND amount = 999.99")
        .await;
    assert_eq!(payments, 1);
    assert_eq!(
        app.count(
            "SELECT count(*) FROM notifications WHERE kind = 'order_confirmed' AND status = 'sent'"
        )
        .await,
        1
    );

    // The state endpoint serves the same object.
    let (code, body) = app.get_json(&format!("/api/orders/state?workflow_id={workflow_id}")).await;
    assert_eq!(code, 200);
    assert_eq!(body["status"], "completed");
    assert_eq!(body["step_history"].as_array().unwrap().len(), 5);
    assert_eq!(body["customer_notified"], true);
    app.replay(workflow_id, "completed").await;
}

#[tokio::test]
async fn insufficient_stock_fails_the_order_and_holds_nothing() {
    let app = TestApp::spawn().await;
    app.add_product("scarce", "10.00", 2).await;
    let body = serde_json::json!({
        "customer_id": "c",
        "items": [
            {"product_id": "prod-003", "name": "AirPods Pro", "quantity": 1, "price": 249.99},
            {"product_id": "scarce", "name": "scarce", "quantity": 3, "price": "10.00"}
        ]
    });
    let before = app.stock("prod-003").await;
    let workflow_id = app.place(&body).await;

    let state = app.outcome(workflow_id).await;
    assert_eq!(state.status, OrderStatus::Failed);
    assert_eq!(state.error_code, Some(ErrorCode::InsufficientStock));
    assert!(
        state.error_message.as_deref().unwrap().contains("scarce"),
        "{:?}",
        state.error_message
    );
    assert!(state.payment_id.is_none());
    let status = app.status(workflow_id).await;
    assert_eq!(
        (status["status"].as_str(), status["error_code"].as_str()),
        (Some("failed"), Some("insufficient_stock"))
    );
    assert_eq!(app.stock("scarce").await, (2, 0, 0));
    assert_eq!(app.stock("prod-003").await, before, "the line that had stock holds none");
    assert_eq!(app.count("SELECT count(*) FROM payments").await, 0);
    assert_eq!(
        app.count("SELECT count(*) FROM notifications WHERE kind = 'order_failed'").await,
        1
    );
    app.replay(workflow_id, "insufficient_stock").await;
}

#[tokio::test]
async fn a_declined_payment_fails_the_order_and_releases_the_stock() {
    let app = TestApp::spawn().await;
    let before = app.stock("prod-006").await;
    // 6 × 1999.99 = 11999.94, above the default limit of 10000.00.
    let workflow_id = app.place(&order_of("prod-006", 6, "1999.99")).await;

    let state = app.outcome(workflow_id).await;
    assert_eq!(state.status, OrderStatus::Failed);
    assert_eq!(state.error_code, Some(ErrorCode::PaymentDeclined));
    let steps: Vec<Step> = state.step_history.iter().map(|r| r.step).collect();
    assert_eq!(
        steps,
        [
            Step::CreateOrder,
            Step::ReserveStock,
            Step::ProcessPayment,
            Step::CloseOrder,
            Step::RefundPayment,
            Step::ReleaseStock,
            Step::NotifyCustomer
        ],
        "the rollback closes the order, then compensates newest first"
    );
    assert_eq!(state.step_history[2].status, StepStatus::Failed);
    assert_eq!(state.step_history[2].retry_count, 0, "a decline is not retried");
    assert_eq!(app.stock("prod-006").await, before);
    assert_eq!(app.count("SELECT count(*) FROM payments WHERE status = 'failed'").await, 1);
    assert_eq!(
        app.count("SELECT count(*) FROM payments").await,
        1,
        "the compensation moved nothing"
    );
    assert_eq!(app.status(workflow_id).await["error_code"], "payment_declined");
    app.replay(workflow_id, "payment_declined").await;
}

#[tokio::test]
async fn a_payment_provider_that_keeps_failing_fails_the_order_after_retries() {
    let app = TestApp::spawn_with(SimulationConfig {
        payment_transient_failure_rate: 1.0,
        ..Default::default()
    })
    .await;
    let before = app.stock("prod-003").await;
    let workflow_id = app.place(&order_of("prod-003", 2, "249.99")).await;

    let state = app.outcome(workflow_id).await;
    assert_eq!(state.status, OrderStatus::Failed);
    assert_eq!(state.error_code, Some(ErrorCode::PaymentFailed));
    let payment = &state.step_history[2];
    assert_eq!((payment.step, payment.retry_count), (Step::ProcessPayment, 4), "5 attempts");
    assert!(state.retry_count >= 4);
    assert!(
        state.step_history.iter().any(|r| r.step == Step::RefundPayment),
        "an unknown outcome is refunded"
    );
    assert_eq!(app.stock("prod-003").await, before);
    assert_eq!(app.count("SELECT count(*) FROM payments").await, 0, "nothing was charged");
    app.replay(workflow_id, "payment_failed").await;
}

#[tokio::test]
async fn a_notification_that_cannot_be_delivered_leaves_the_order_completed() {
    let app = TestApp::spawn_with(SimulationConfig {
        notification_failure_rate: 1.0,
        ..Default::default()
    })
    .await;
    let workflow_id = app.place(&readme_order()).await;

    let state = app.outcome(workflow_id).await;
    assert_eq!(state.status, OrderStatus::Completed);
    assert!(!state.customer_notified);
    let notify = state.step_history.last().unwrap();
    assert_eq!(
        (notify.step, notify.status, notify.retry_count),
        (Step::NotifyCustomer, StepStatus::Failed, 2)
    );
    assert_eq!(app.status(workflow_id).await["status"], "completed");
    assert_eq!(
        app.count("SELECT count(*) FROM notifications WHERE status = 'failed' AND attempts = 3")
            .await,
        1,
        "each attempt is recorded"
    );
    let notified: bool = sqlx::query_scalar("SELECT customer_notified FROM orders")
        .fetch_one(app.store.pool())
        .await
        .unwrap();
    assert!(!notified);
    app.replay(workflow_id, "notification_failed").await;
}

#[tokio::test]
async fn products_are_listed_with_their_stock() {
    let app = TestApp::spawn().await;
    let (code, body) = app.get_json("/api/products").await;
    assert_eq!(code, 200);
    let products = body.as_array().unwrap();
    assert_eq!(products.len(), 8);
    assert_eq!(products[0]["id"], "prod-001");
    assert_eq!(products[0]["price"], "999.99");
    for field in ["id", "name", "sku", "price", "available", "reserved"] {
        assert!(products[0].get(field).is_some(), "missing {field}");
    }
    let (code, body) = app.get_json("/api/products/prod-008").await;
    assert_eq!((code, body["name"].as_str()), (200, Some("iPad Pro 12.9\"")));
    let (code, body) = app.get_json("/api/products/prod-999").await;
    assert_eq!((code, body["status"].as_u64()), (404, Some(404)));
}

#[tokio::test]
async fn health_reports_both_dependencies() {
    let app = TestApp::spawn().await;
    let (code, body) = app.get_json("/health").await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["postgres"]["status"], "up");
    assert_eq!(body["temporal"]["status"], "up");
}

#[tokio::test]
async fn health_is_503_and_says_which_dependency_is_down_while_live_stays_200() {
    use orderflow_api::{ApiContext, Orchestrator, router};
    let app = TestApp::spawn().await;
    // The same service, but its database is a port nothing listens on.
    let options =
        sqlx::postgres::PgConnectOptions::new().host("127.0.0.1").port(1).database("none");
    let ctx = ApiContext::new(
        orderflow_store::Store::connect_lazy(options, 1),
        Orchestrator::new(app.temporal.clone(), "unused", app.database_id),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router(ctx)).await });

    // Alive all the same: a liveness probe must not restart it for its database's trouble.
    let live = reqwest::get(format!("http://{address}/live")).await.unwrap();
    assert_eq!(live.status(), 200);
    assert_eq!(live.json::<serde_json::Value>().await.unwrap()["status"], "alive");

    let response = reqwest::get(format!("http://{address}/health")).await.unwrap();
    assert_eq!(response.status(), 503);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["postgres"]["status"], "down", "{body}");
    assert_eq!(body["temporal"]["status"], "up", "{body}");
    // Public endpoint: which dependency, not the driver's error text (hosts, ports, users).
    let error = body["postgres"]["error"].as_str().unwrap();
    assert!(!error.contains("127.0.0.1") && !error.contains("refused"), "{error}");

    // And the order endpoints say the database is unavailable, rather than failing obscurely.
    let response = reqwest::Client::new()
        .post(format!("http://{address}/api/orders"))
        .json(&readme_order())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
}
