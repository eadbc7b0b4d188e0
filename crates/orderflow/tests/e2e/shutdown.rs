//! Stopping a worker and living through a broken database: shutdown is bounded by its grace
//! period, work cut off is finished by another worker exactly once, a step that cannot succeed
//! is flagged for the operators without its error reaching the customer, and it resumes by
//! itself once the cause is fixed.

use crate::support::{ADMIN_KEY, TestApp, WorkerProcess};
use orderflow::config::SimulationConfig;
use orderflow_domain::{OrderStatus, WorkflowId};
use serde_json::Value;
use std::time::Duration;

/// Polls `check` every 100 ms for at most `limit`.
async fn eventually<F: AsyncFn() -> bool>(limit: Duration, check: F) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    check().await
}

async fn in_payment(app: &TestApp, id: WorkflowId) -> bool {
    app.status(id).await["status"] == "payment"
}

/// The operators' list of stuck steps.
async fn stuck_steps(app: &TestApp) -> Vec<Value> {
    let response = app
        .http
        .get(app.url("/api/admin/stuck-orders"))
        .header("X-API-Key", ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// SIGTERM, and the process must be gone within its grace period (plus start-up slack).
async fn stop_within(worker: &mut WorkerProcess, grace: Duration) {
    worker.terminate();
    let exited = worker.exited_within(grace + Duration::from_secs(5)).await;
    assert!(exited.is_some(), "the worker exits within its grace period after SIGTERM");
}

#[tokio::test]
async fn a_shutdown_cut_short_mid_payment_leaves_the_orders_to_another_worker_exactly_once() {
    let mut app = TestApp::spawn_without_worker(SimulationConfig::default()).await;
    // Payments take 3 s; the worker gets 1 s to finish them when told to stop.
    let mut worker =
        app.worker_process(&[("PAYMENT_DELAY_MS", "3000"), ("SHUTDOWN_GRACE_MS", "1000")]);
    let body = crate::support::order_of("prod-002", 1, "1199.99");
    let mut orders = Vec::new();
    for _ in 0..3 {
        orders.push(app.place(&body).await);
    }
    for id in &orders {
        assert!(eventually(Duration::from_secs(30), async || in_payment(&app, *id).await).await);
    }
    stop_within(&mut worker, Duration::from_secs(1)).await;

    // Another worker finishes what was cut off; every order is charged once and sold once.
    app.start_worker();
    for id in &orders {
        assert_eq!(app.outcome(*id).await.status, OrderStatus::Completed);
    }
    assert_eq!(app.count("SELECT count(*) FROM payments WHERE status = 'captured'").await, 3);
    assert_eq!(app.count("SELECT count(DISTINCT payment_id) FROM payments").await, 3);
    let (available, reserved, sold) = app.stock("prod-002").await;
    assert_eq!((reserved, sold), (0, 3), "available {available}");
}

#[tokio::test]
async fn a_step_that_cannot_succeed_is_flagged_and_resumes_once_the_database_is_repaired() {
    let mut app = TestApp::spawn_without_worker(SimulationConfig::default()).await;
    let mut worker =
        app.worker_process(&[("STUCK_AFTER_ATTEMPTS", "3"), ("SHUTDOWN_GRACE_MS", "2000")]);
    // A broken migration, a revoked grant, a restore that lost a table: the payment step cannot
    // read or write the payment's record. Broken before the order arrives, so that the payment
    // step is the first to meet it, whatever the timing.
    app.execute("ALTER TABLE payments RENAME TO payments_broken").await;
    let id = app.place(&crate::support::readme_order()).await;

    assert!(
        eventually(Duration::from_secs(60), async || !stuck_steps(&app).await.is_empty()).await,
        "the step is flagged as stuck"
    );
    let flagged = stuck_steps(&app).await;
    assert_eq!(flagged[0]["workflow_id"], id.to_string());
    assert_eq!(flagged[0]["step"], "process_payment");
    assert!(flagged[0]["attempts"].as_i64().unwrap() >= 3);
    assert!(flagged[0]["last_error"].as_str().unwrap().contains("payments"), "{flagged:?}");

    // What customers see says nothing of the database.
    let (_, detail) = app.get_text(&format!("/api/orders/{}", id.order_id())).await;
    let (_, list) = app.get_text("/api/orders").await;
    for text in [&detail, &list] {
        for leak in ["relation", "payments_broken", "does not exist", "database"] {
            assert!(!text.contains(leak), "{leak:?} reached a customer: {text}");
        }
    }
    assert_eq!(app.status(id).await["status"], "payment", "the order waits, it does not fail");

    // A stuck worker still stops within its grace period.
    stop_within(&mut worker, Duration::from_secs(2)).await;

    // Repaired: the order completes by itself, charged and sold once, and is no longer stuck.
    app.execute("ALTER TABLE payments_broken RENAME TO payments").await;
    app.start_worker();
    // Its next attempt may be a durable retry timer away (backoff doubling from 200 ms to at
    // most 5 minutes; after the attempts above, under a minute and a half).
    let state = app.outcome_within(id, Duration::from_secs(180)).await;
    assert_eq!(state.status, OrderStatus::Completed, "{state:?}");
    assert_eq!(app.count("SELECT count(*) FROM payments WHERE status = 'captured'").await, 1);
    assert_eq!(app.stock("prod-001").await.2, 1);
    assert!(eventually(Duration::from_secs(30), async || stuck_steps(&app).await.is_empty()).await);
}

#[tokio::test]
async fn a_worker_replaced_every_few_steps_finishes_every_order_once() {
    // The service replaces its SDK worker after WORKER_RECYCLE_AFTER_STEPS steps (the SDK keeps
    // memory per step run until the worker is dropped); here every 10 steps, i.e. every two
    // orders, while orders keep arriving.
    let app = TestApp::spawn_without_worker(SimulationConfig::default()).await;
    let worker =
        app.worker_process(&[("WORKER_RECYCLE_AFTER_STEPS", "10"), ("PAYMENT_DELAY_MS", "200")]);
    let body = crate::support::order_of("prod-003", 1, "249.99");
    let mut orders = Vec::new();
    for _ in 0..8 {
        for _ in 0..5 {
            orders.push(app.place(&body).await);
        }
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    for id in &orders {
        assert_eq!(app.outcome(*id).await.status, OrderStatus::Completed, "{id}");
    }
    let replaced = worker.log().matches("replacing the worker with a fresh one").count();
    assert!(replaced >= 3, "the worker was replaced {replaced} times");
    assert_eq!(app.count("SELECT count(*) FROM payments").await, 40, "each order charged once");
    assert_eq!(app.count("SELECT sum(sold)::bigint FROM products WHERE id = 'prod-003'").await, 40);
}
