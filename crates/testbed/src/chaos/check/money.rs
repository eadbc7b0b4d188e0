//! Money, where it really is: the provider's ledger against each order's end (a completed order
//! was captured for its total once, an ended one kept nothing, no authorization is left open,
//! no money is taken for an order nobody knows), then OrderFlow's own books against the ledger.

use super::{Findings, Invariant, LedgerIntent};
use orderflow_domain::PaymentStatus;
use rust_decimal::Decimal;
use sqlx::PgConnection;
use std::collections::HashMap;

pub(super) async fn check(
    findings: &mut Findings,
    db: &mut PgConnection,
    ledger: &[LedgerIntent],
) -> anyhow::Result<()> {
    let orders =
        sqlx::query!(r#"SELECT id::text AS "id!", workflow_id, status, total_amount FROM orders"#)
            .fetch_all(&mut *db)
            .await?;
    let mut by_order: HashMap<&str, Vec<&LedgerIntent>> = HashMap::new();
    for intent in ledger {
        by_order.entry(intent.order_id.as_str()).or_default().push(intent);
    }
    let none: Vec<&LedgerIntent> = Vec::new();
    let (mut not_captured, mut twice, mut kept) = (Vec::new(), Vec::new(), Vec::new());
    for order in &orders {
        let intents = by_order.get(order.id.as_str()).unwrap_or(&none);
        let taken = intents.iter().filter(|i| i.kept() > Decimal::ZERO).count();
        if taken > 1 {
            twice.push(format!("{} ({taken} intents with money taken)", order.workflow_id));
        }
        match order.status.as_str() {
            "completed"
                if !intents
                    .iter()
                    .any(|i| i.captured == order.total_amount && i.refunded.is_zero()) =>
            {
                not_captured.push(order.workflow_id.clone());
            }
            "failed" | "cancelled" if taken > 0 => kept.push(order.workflow_id.clone()),
            _ => {}
        }
    }
    findings.expect_none(Invariant::CompletedOrderNotCaptured, not_captured);
    findings.expect_none(Invariant::ChargedMoreThanOnce, twice);
    findings.expect_none(Invariant::EndedOrderKeptMoney, kept);
    let open = ledger.iter().filter(|i| i.open()).map(|i| i.id.clone()).collect();
    findings.expect_none(Invariant::AuthorizationLeftOpen, open);
    let known: std::collections::HashSet<&str> = orders.iter().map(|o| o.id.as_str()).collect();
    let strangers = ledger
        .iter()
        .filter(|i| !known.contains(i.order_id.as_str()) && i.kept() > Decimal::ZERO)
        .map(|i| format!("{} (order {})", i.id, i.order_id))
        .collect();
    findings.expect_none(Invariant::MoneyForUnknownOrder, strangers);

    // OrderFlow's record of each payment against the provider's.
    let books = sqlx::query!(
        r#"SELECT o.workflow_id, p.order_id::text AS "order_id!", p.payment_id AS "payment_id!",
                  p.status, p.amount, p.captured, p.refunded
           FROM payments p JOIN orders o ON o.id = p.order_id
           WHERE p.payment_id IS NOT NULL"#
    )
    .fetch_all(&mut *db)
    .await?;
    let intents: HashMap<&str, &LedgerIntent> = ledger.iter().map(|i| (i.id.as_str(), i)).collect();
    let disagreeing = books
        .iter()
        .filter_map(|p| {
            let open = PaymentStatus::parse(&p.status).is_some_and(|s| s.is_open());
            let Some(intent) = intents.get(p.payment_id.as_str()) else {
                return Some(format!("{}: {} not in the ledger", p.workflow_id, p.payment_id));
            };
            let agrees = intent.order_id == p.order_id
                && intent.amount == p.amount
                && intent.captured == p.captured
                && intent.refunded == p.refunded
                && intent.open() == open;
            (!agrees).then(|| {
                format!(
                    "{}: {} {} captured {} refunded {} here, {:?} captured {} refunded {} there",
                    p.workflow_id,
                    p.payment_id,
                    p.status,
                    p.captured,
                    p.refunded,
                    intent.status,
                    intent.captured,
                    intent.refunded
                )
            })
        })
        .collect();
    findings.expect_none(Invariant::BooksDisagreeWithLedger, disagreeing);
    Ok(())
}
