//! Cancellation: honoured before the point of no return (stock released, payment voided),
//! refused with 409 after it.
//!
//! The simulated delays here are long on purpose: steps run as local activities inside one
//! workflow task, and a cancel update reaches the workflow only when the worker heartbeats
//! that task (with the 2 s task timeout of `quick_heartbeats`, every 1.6 s) or completes it.
//! An 8 s step is heartbeated last at 6.4 s: the test's cancel has that long to reach the
//! server, which on a busy 2-core machine still leaves seconds to spare.

use crate::support::{TestApp, order_of, quick_heartbeats, readme_order, test_http};
use orderflow::config::SimulationConfig;
use orderflow_domain::{OrderStatus, Step};
use std::time::Duration;

#[tokio::test]
async fn cancelling_while_stock_is_checked_cancels_without_charging() {
    let app = TestApp::spawn_configured(
        SimulationConfig { inventory_delay: Duration::from_millis(8000), ..Default::default() },
        quick_heartbeats(test_http()),
    )
    .await;
    let before = app.stock("prod-003").await;
    let workflow_id = app.place(&order_of("prod-003", 2, "249.99")).await;
    app.wait_for_status(workflow_id, "validating").await;

    let (code, body) = app.cancel(workflow_id).await;
    assert_eq!(code, 202, "{body}");
    assert_eq!(body["workflow_id"], workflow_id.to_string());

    let state = app.outcome(workflow_id).await;
    assert_eq!(state.status, OrderStatus::Cancelled);
    assert!(state.is_cancelled);
    assert!(state.error_code.is_none());
    let steps: Vec<Step> = state.step_history.iter().map(|r| r.step).collect();
    assert_eq!(
        steps,
        [
            Step::CreateOrder,
            Step::ReserveStock,
            Step::CloseOrder,
            Step::RefundPayment,
            Step::ReleaseStock,
            Step::NotifyCustomer
        ],
        "every compensation runs; the refund finds nothing to give back"
    );
    assert_eq!(app.stock("prod-003").await, before);
    assert_eq!(app.count("SELECT count(*) FROM payments").await, 0);
    assert_eq!(app.status(workflow_id).await["status"], "cancelled");
    assert_eq!(
        app.count("SELECT count(*) FROM notifications WHERE kind = 'order_cancelled'").await,
        1
    );
    app.replay(workflow_id, "cancelled_while_validating").await;
}

#[tokio::test]
async fn cancelling_while_payment_is_taken_voids_it() {
    let app = TestApp::spawn_configured(
        SimulationConfig { payment_delay: Duration::from_millis(8000), ..Default::default() },
        quick_heartbeats(test_http()),
    )
    .await;
    let before = app.stock("prod-001").await;
    let workflow_id = app.place(&readme_order()).await;
    app.wait_for_status(workflow_id, "payment").await;

    let (code, body) = app.cancel(workflow_id).await;
    assert_eq!(code, 202, "{body}");
    assert_eq!(body["status"], "payment");

    let state = app.outcome(workflow_id).await;
    assert_eq!(state.status, OrderStatus::Cancelled);
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
        "compensations run newest first"
    );
    assert!(state.payment_id.is_some());
    assert_eq!(app.stock("prod-001").await, before);
    assert_eq!(
        app.count("SELECT count(*) FROM payments WHERE status = 'voided' AND captured = 0").await,
        1
    );
    app.replay(workflow_id, "cancelled_after_payment").await;
}

#[tokio::test]
async fn a_finished_order_cannot_be_cancelled() {
    let app = TestApp::spawn().await;
    let workflow_id = app.place(&readme_order()).await;
    app.outcome(workflow_id).await;
    let stock = app.stock("prod-001").await;

    let (code, body) = app.cancel(workflow_id).await;
    assert_eq!(code, 409, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("completed"), "{body}");
    assert_eq!(app.stock("prod-001").await, stock, "nothing changed");
    assert_eq!(app.status(workflow_id).await["status"], "completed");
}

#[tokio::test]
async fn a_cancelled_order_cannot_be_cancelled_again_but_asking_twice_while_running_is_fine() {
    let app = TestApp::spawn_configured(
        SimulationConfig { inventory_delay: Duration::from_millis(8000), ..Default::default() },
        quick_heartbeats(test_http()),
    )
    .await;
    let workflow_id = app.place(&readme_order()).await;
    app.wait_for_status(workflow_id, "validating").await;
    // A client retrying its cancel while the first request is still waiting for an answer.
    let (first, second) = tokio::join!(app.cancel(workflow_id), app.cancel(workflow_id));
    assert_eq!((first.0, second.0), (202, 202), "{first:?} {second:?}");
    // Once it has ended cancelled, asking again is answered with the truth: it is cancelled.
    app.outcome(workflow_id).await;
    let (code, body) = app.cancel(workflow_id).await;
    assert_eq!((code, body["status"].as_str()), (202, Some("cancelled")), "{body}");
}

#[tokio::test]
async fn unknown_or_missing_workflow_ids_are_404_and_400() {
    let app = TestApp::spawn().await;
    let unknown = orderflow_domain::OrderId::generate().workflow_id();
    for path in ["/api/orders/status", "/api/orders/state"] {
        let (code, body) = app.get_json(&format!("{path}?workflow_id={unknown}")).await;
        assert_eq!(code, 404, "{path}: {body}");
        let (code, _) = app
            .get_json(&format!("{path}?workflow_id=order-processing-customer-001-1234567890"))
            .await;
        assert_eq!(code, 404, "{path} with a foreign id");
        let (code, body) = app.get_json(path).await;
        assert_eq!(code, 400, "{path} without workflow_id: {body}");
        let (code, _) = app.get_json(&format!("{path}?workflow_id=")).await;
        assert_eq!(code, 400, "{path} with an empty workflow_id");
    }
    assert_eq!(app.cancel(unknown).await.0, 404);
    let response = app.http.post(app.url("/api/orders/cancel")).send().await.unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(response.headers()["content-type"], "application/problem+json");
}

#[tokio::test]
async fn cancelling_from_temporal_itself_runs_the_compensations_too() {
    let app = TestApp::spawn_configured(
        SimulationConfig { payment_delay: Duration::from_millis(8000), ..Default::default() },
        quick_heartbeats(test_http()),
    )
    .await;
    let before = app.stock("prod-001").await;
    let workflow_id = app.place(&readme_order()).await;
    app.wait_for_status(workflow_id, "payment").await;

    // What the Temporal UI's or CLI's "cancel" does.
    let handle = app
        .temporal
        .get_workflow_handle::<orderflow_workflow::OrderWorkflow>(workflow_id.to_string());
    handle.cancel(temporalio_client::WorkflowCancelOptions::default()).await.unwrap();

    let state = app.outcome(workflow_id).await;
    assert_eq!(state.status, OrderStatus::Cancelled);
    assert!(state.is_cancelled);
    let steps: Vec<Step> = state.step_history.iter().map(|r| r.step).collect();
    assert!(
        steps.ends_with(&[Step::RefundPayment, Step::ReleaseStock, Step::NotifyCustomer]),
        "{steps:?}"
    );
    assert_eq!(app.stock("prod-001").await, before);
    assert_eq!(app.count("SELECT count(*) FROM payments WHERE status = 'voided'").await, 1);
}
