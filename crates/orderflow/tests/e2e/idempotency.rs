//! `Idempotency-Key`: a retried request returns the same order and starts nothing new.

use crate::support::{TestApp, order_of, readme_order};
use futures::future::join_all;
use orderflow_api::OrderAccepted;
use serde_json::Value;

async fn post_with_key(app: &TestApp, key: &str, body: &Value) -> (u16, Value) {
    let response = app
        .http
        .post(app.url("/api/orders"))
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn the_same_key_and_body_return_the_same_order() {
    let app = TestApp::spawn().await;
    let (first_code, first) = post_with_key(&app, "retry-1", &readme_order()).await;
    assert_eq!(first_code, 201, "{first}");
    let workflow_id =
        orderflow_domain::WorkflowId::parse(first["workflow_id"].as_str().unwrap()).unwrap();
    app.outcome(workflow_id).await;

    // The price as a string is the same request.
    let mut same = readme_order();
    same["items"][0]["price"] = "999.99".into();
    let (code, again) = post_with_key(&app, "retry-1", &same).await;
    assert_eq!(code, 200, "{again}");
    assert_eq!(again["workflow_id"], first["workflow_id"]);
    assert_eq!(again["order_id"], first["order_id"]);
    assert_eq!(again["status"], "completed");
    assert_eq!(app.count("SELECT count(*) FROM orders").await, 1);
    assert_eq!(app.count("SELECT count(*) FROM payments").await, 1);
}

#[tokio::test]
async fn the_same_key_with_another_body_is_refused() {
    let app = TestApp::spawn().await;
    let (code, first) = post_with_key(&app, "k-2", &readme_order()).await;
    assert_eq!(code, 201);
    let (code, body) = post_with_key(&app, "k-2", &order_of("prod-003", 1, "249.99")).await;
    assert_eq!(code, 422, "{body}");
    assert_eq!(body["code"], "idempotency_key_reused");
    // Counted once the first order has ended (its row is written by its workflow): the refused
    // request added none.
    let first =
        orderflow_domain::WorkflowId::parse(first["workflow_id"].as_str().unwrap()).unwrap();
    app.outcome(first).await;
    assert_eq!(app.count("SELECT count(*) FROM orders").await, 1);
}

#[tokio::test]
async fn concurrent_retries_with_one_key_create_one_order() {
    let app = TestApp::spawn().await;
    let body = readme_order();
    let responses = join_all((0..8).map(|_| post_with_key(&app, "burst", &body))).await;
    let created = responses.iter().filter(|(code, _)| *code == 201).count();
    assert_eq!(created, 1, "{responses:?}");
    assert!(responses.iter().all(|(code, _)| *code == 200 || *code == 201), "{responses:?}");
    let ids: Vec<OrderAccepted> =
        responses.into_iter().map(|(_, body)| serde_json::from_value(body).unwrap()).collect();
    assert!(ids.iter().all(|a| a.workflow_id == ids[0].workflow_id));
    let workflow_id = orderflow_domain::WorkflowId::parse(&ids[0].workflow_id).unwrap();
    app.outcome(workflow_id).await;
    assert_eq!(app.count("SELECT count(*) FROM orders").await, 1);
    let runs = app
        .temporal
        .count_workflows(format!("WorkflowId = '{workflow_id}'"), Default::default())
        .await
        .unwrap()
        .count();
    assert_eq!(runs, 1, "one workflow run");
    assert_eq!(
        app.count("SELECT sold::bigint FROM products WHERE id = 'prod-001'").await as i32,
        1
    );
}

#[tokio::test]
async fn a_malformed_key_is_a_400_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let (code, body) = post_with_key(&app, &"k".repeat(256), &readme_order()).await;
    assert_eq!(code, 400, "{body}");
    assert_eq!(app.count("SELECT count(*) FROM idempotency_keys").await, 0);
}
