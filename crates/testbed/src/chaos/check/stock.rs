//! Stock: per product, the units are conserved and never below zero, and the counters agree with
//! the reservations; per order, what ended holds nothing and what completed sold its lines.
//! Each reservation state belongs to one rule: `held` at the end is left reserved whoever holds
//! it, `sold` is wrong for an order that did not complete, `released` (or none, or another
//! quantity) is wrong for one that did.

use super::{Findings, Invariant};
use sqlx::PgConnection;
use std::collections::BTreeMap;

pub(super) async fn check(
    findings: &mut Findings,
    db: &mut PgConnection,
    initial_stock: &BTreeMap<String, i32>,
) -> anyhow::Result<()> {
    let products = sqlx::query!(
        r#"SELECT p.id, p.available, p.reserved, p.sold,
                  COALESCE(SUM(r.quantity) FILTER (WHERE r.status = 'held'), 0) AS "held!",
                  COALESCE(SUM(r.quantity) FILTER (WHERE r.status = 'sold'), 0) AS "sold_rows!"
           FROM products p LEFT JOIN reservations r ON r.product_id = p.id
           GROUP BY p.id ORDER BY p.id"#
    )
    .fetch_all(&mut *db)
    .await?;

    // Without its initial stock a product's conservation cannot be checked: that is a finding,
    // not a pass.
    let unrecorded = products
        .iter()
        .filter(|p| !initial_stock.contains_key(&p.id))
        .map(|p| p.id.clone())
        .collect();
    findings.expect_none(Invariant::ProductWithoutInitialStock, unrecorded);
    let oversold = products
        .iter()
        .filter(|p| p.available < 0)
        .map(|p| format!("{}: available {}", p.id, p.available))
        .collect();
    findings.expect_none(Invariant::Oversold, oversold);
    let not_conserved = products
        .iter()
        .filter_map(|p| Some((p, *initial_stock.get(&p.id)?)))
        .filter(|(p, initial)| p.available + p.reserved + p.sold != *initial)
        .map(|(p, initial)| {
            format!(
                "{}: available {} + reserved {} + sold {} ≠ initial {initial}",
                p.id, p.available, p.reserved, p.sold
            )
        })
        .collect();
    findings.expect_none(Invariant::StockCreatedOrLost, not_conserved);
    let disagreeing = products
        .iter()
        .filter(|p| i64::from(p.reserved) != p.held || i64::from(p.sold) != p.sold_rows)
        .map(|p| {
            format!(
                "{}: reserved {} vs held rows {}, sold {} vs sold rows {}",
                p.id, p.reserved, p.held, p.sold, p.sold_rows
            )
        })
        .collect();
    findings.expect_none(Invariant::CountersDisagreeWithReservations, disagreeing);

    let held = sqlx::query_scalar!(
        r#"SELECT o.workflow_id || ': ' || r.product_id || ' × ' || r.quantity AS "held!"
           FROM reservations r JOIN orders o ON o.id = r.order_id
           WHERE r.status = 'held' ORDER BY o.workflow_id"#
    )
    .fetch_all(&mut *db)
    .await?;
    findings.expect_none(Invariant::ReservationLeftHeld, held);
    let sold_for_nothing = sqlx::query_scalar!(
        r#"SELECT DISTINCT o.workflow_id AS "offender!" FROM orders o
           JOIN reservations r ON r.order_id = o.id
           WHERE o.status IN ('failed', 'cancelled') AND r.status = 'sold'"#
    )
    .fetch_all(&mut *db)
    .await?;
    findings.expect_none(Invariant::EndedOrderSoldStock, sold_for_nothing);
    let unsold = sqlx::query_scalar!(
        r#"SELECT DISTINCT o.workflow_id AS "offender!" FROM orders o
           JOIN order_items i ON i.order_id = o.id
           LEFT JOIN reservations r ON r.order_id = i.order_id AND r.product_id = i.product_id
           WHERE o.status = 'completed'
             AND (r.order_id IS NULL OR r.status = 'released' OR r.quantity <> i.quantity)"#
    )
    .fetch_all(&mut *db)
    .await?;
    findings.expect_none(Invariant::CompletedOrderNotSold, unsold);
    Ok(())
}
