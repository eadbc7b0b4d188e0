//! The API answers for orders while no worker runs; the orders wait, safe, and complete when a
//! worker comes.

use crate::support::{TestApp, readme_order};
use orderflow::config::SimulationConfig;
use orderflow_domain::OrderStatus;

#[tokio::test]
async fn orders_accepted_without_a_worker_complete_once_one_starts() {
    let mut app = TestApp::spawn_without_worker(SimulationConfig::default()).await;
    let workflow_id = app.place(&readme_order()).await;
    let status = app.status(workflow_id).await;
    assert_eq!(status["status"], "pending", "{status}");

    app.start_worker();
    let state = app.outcome(workflow_id).await;
    assert_eq!(state.status, OrderStatus::Completed);
    assert_eq!(app.status(workflow_id).await["status"], "completed");
}

/// Two deployments with different databases sharing a task queue: the other deployment's worker
/// refuses the order's steps before touching its own data, and the order is processed by a
/// worker of its own deployment once one polls.
#[tokio::test]
async fn a_worker_of_another_database_refuses_the_order_and_its_own_worker_completes_it() {
    let mut app = TestApp::spawn_without_worker(SimulationConfig::default()).await;
    let foreign = app.start_foreign_worker().await;
    let workflow_id = app.place(&readme_order()).await;

    // The foreign worker gets the order's task (it is the only one polling) and refuses it.
    let refused = || async {
        let (_, metrics) = app.get_text("/metrics").await;
        metrics
            .lines()
            .any(|l| l.starts_with("orderflow_foreign_orders_refused_total{step=\"create_order\"}"))
    };
    for _ in 0..100 {
        if refused().await {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(refused().await, "the foreign worker refused the order");
    let untouched = |store: &orderflow_store::Store| {
        let pool = store.pool().clone();
        async move {
            let orders: i64 =
                sqlx::query_scalar("SELECT count(*) FROM orders").fetch_one(&pool).await.unwrap();
            let products: i64 =
                sqlx::query_scalar("SELECT count(*) FROM products WHERE reserved > 0 OR sold > 0")
                    .fetch_one(&pool)
                    .await
                    .unwrap();
            (orders, products)
        }
    };
    assert_eq!(untouched(&foreign).await, (0, 0), "nothing written to the other database");
    assert_eq!(app.count("SELECT count(*) FROM orders").await, 0);

    // Its own deployment's worker runs it; the foreign database stays untouched.
    app.start_worker();
    let state = app.outcome(workflow_id).await;
    assert_eq!(state.status, OrderStatus::Completed);
    assert_eq!(app.stock("prod-001").await.2, 1);
    assert_eq!(untouched(&foreign).await, (0, 0));
}
