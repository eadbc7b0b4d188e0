//! Many customers racing for the last units: the shop sells exactly what it has.

use crate::support::{TestApp, order_of};
use futures::future::join_all;
use orderflow_domain::{ErrorCode, OrderStatus};

#[tokio::test]
async fn forty_orders_for_twenty_five_units_sell_exactly_twenty_five() {
    let app = TestApp::spawn().await;
    app.add_product("last-units", "5.00", 25).await;
    let body = order_of("last-units", 1, "5.00");
    let workflow_ids = join_all((0..40).map(|_| app.place(&body))).await;
    let outcomes = join_all(workflow_ids.iter().map(|id| app.outcome(*id))).await;

    let completed = outcomes.iter().filter(|s| s.status == OrderStatus::Completed).count();
    let short = outcomes
        .iter()
        .filter(|s| {
            s.status == OrderStatus::Failed && s.error_code == Some(ErrorCode::InsufficientStock)
        })
        .count();
    assert_eq!((completed, short), (25, 15));
    assert_eq!(app.stock("last-units").await, (0, 0, 25));
    assert_eq!(app.count("SELECT count(*) FROM payments WHERE status = 'captured'").await, 25);
    assert_eq!(app.count("SELECT count(*) FROM reservations WHERE status = 'held'").await, 0);
}
