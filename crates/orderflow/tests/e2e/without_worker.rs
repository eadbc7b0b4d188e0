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
