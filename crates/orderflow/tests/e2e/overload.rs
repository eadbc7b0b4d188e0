//! A burst of orders beyond what the service takes at once: the excess is refused at the door
//! (503 problem+json with `Retry-After`, nothing written) and every accepted order completes.

use crate::support::{TestApp, order_of, test_http};
use futures::future::join_all;
use orderflow::config::{HttpConfig, SimulationConfig};
use orderflow_domain::OrderStatus;
use orderflow_domain::WorkflowId;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Barrier;

/// What one request of a burst got.
enum Answer {
    Accepted(WorkflowId),
    Shed,
}

/// Sends `n` orders at once (all requests released together) and checks every answer's shape.
async fn burst(app: &TestApp, n: usize, body: &Value) -> Vec<Answer> {
    let start = Arc::new(Barrier::new(n));
    let requests = (0..n).map(|_| {
        let start = start.clone();
        async move {
            start.wait().await;
            let response = app.post_order(body).await;
            let status = response.status().as_u16();
            let retry_after = response.headers().get("retry-after").cloned();
            let content_type = response.headers().get("content-type").cloned();
            let json: Value = response.json().await.expect("every answer is JSON");
            match status {
                201 => Answer::Accepted(
                    WorkflowId::parse(json["workflow_id"].as_str().unwrap()).unwrap(),
                ),
                503 => {
                    assert_eq!(json["code"], "overloaded", "{json}");
                    assert_eq!(content_type.unwrap(), "application/problem+json");
                    let seconds: u32 =
                        retry_after.expect("Retry-After").to_str().unwrap().parse().unwrap();
                    assert!(seconds >= 1, "Retry-After {seconds}");
                    Answer::Shed
                }
                other => panic!("unexpected {other}: {json}"),
            }
        }
    });
    join_all(requests).await
}

fn accepted(answers: &[Answer]) -> Vec<WorkflowId> {
    answers
        .iter()
        .filter_map(|a| match a {
            Answer::Accepted(id) => Some(*id),
            Answer::Shed => None,
        })
        .collect()
}

#[tokio::test]
async fn a_burst_beyond_the_limit_is_shed_cleanly_and_every_accepted_order_completes() {
    // Slow orders and a small budget, so that most of the burst finds the process full.
    let simulation =
        SimulationConfig { inventory_delay: Duration::from_millis(1000), ..Default::default() };
    let http = HttpConfig { max_orders_in_flight: 40, ..test_http() };
    let app = TestApp::spawn_configured(simulation, http).await;
    app.add_product("burst", "1.00", 10_000).await;

    let answers = burst(&app, 500, &order_of("burst", 1, "1.00")).await;
    let accepted = accepted(&answers);
    let shed = answers.len() - accepted.len();
    assert!(accepted.len() >= 40 && shed > 0, "{} accepted, {shed} shed", accepted.len());

    // Nothing was written for a shed request: the database holds exactly the accepted orders.
    // A liveness bound for the whole burst (up to 600 orders through one worker on a busy
    // machine), not a minute per order counted from the same start.
    let all = join_all(accepted.iter().map(|id| app.outcome_within(*id, Duration::from_secs(300))));
    for outcome in all.await {
        assert_eq!(outcome.status, OrderStatus::Completed, "{outcome:?}");
    }
    let n = accepted.len() as i64;
    assert_eq!(app.count("SELECT count(*) FROM orders").await, n);
    assert_eq!(app.count("SELECT count(*) FROM payments").await, n);
    assert_eq!(app.stock("burst").await, (10_000 - n as i32, 0, n as i32));
    // Room frees up as orders finish: the next order is accepted.
    app.place(&order_of("burst", 1, "1.00")).await;
    let (code, _) = app.get_json("/health").await;
    assert_eq!(code, 200);
}

#[tokio::test]
async fn a_burst_of_600_orders_at_the_default_limits_completes_every_accepted_order() {
    let app = TestApp::spawn().await;
    app.add_product("burst", "1.00", 10_000).await;

    let answers = burst(&app, 600, &order_of("burst", 1, "1.00")).await;
    let accepted = accepted(&answers);
    assert!(!accepted.is_empty());
    // A liveness bound for the whole burst (up to 600 orders through one worker on a busy
    // machine), not a minute per order counted from the same start.
    let all = join_all(accepted.iter().map(|id| app.outcome_within(*id, Duration::from_secs(300))));
    for outcome in all.await {
        assert_eq!(outcome.status, OrderStatus::Completed, "{outcome:?}");
    }
    assert_eq!(app.count("SELECT count(*) FROM orders").await, accepted.len() as i64);
    assert_eq!(app.count("SELECT count(*) FROM orders WHERE completed_at IS NULL").await, 0);
}
