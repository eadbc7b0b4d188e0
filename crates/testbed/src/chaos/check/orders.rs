//! The orders' ends against what their clients were told: every acknowledged order exists and
//! ended, one Idempotency-Key made one order, a 202 cancellation was honoured and nobody else's
//! was, and nobody saw or owns another customer's order.

use super::{Findings, Invariant};
use crate::chaos::load::OrderAttempt;
use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use std::collections::{BTreeMap, HashMap};

/// One row of the orders table, as the checks read it.
pub(super) struct OrderRow {
    status: String,
    error_code: Option<String>,
    customer_id: String,
    hold_expires_at: Option<DateTime<Utc>>,
}

/// The orders table, read once, by workflow id.
pub(super) struct Orders(HashMap<String, OrderRow>);

impl Orders {
    pub(super) async fn load(db: &mut PgConnection) -> anyhow::Result<Self> {
        let rows = sqlx::query!(
            "SELECT workflow_id, status, error_code, customer_id, hold_expires_at FROM orders"
        )
        .fetch_all(db)
        .await?;
        Ok(Self(
            rows.into_iter()
                .map(|r| {
                    let row = OrderRow {
                        status: r.status,
                        error_code: r.error_code,
                        customer_id: r.customer_id,
                        hold_expires_at: r.hold_expires_at,
                    };
                    (r.workflow_id, row)
                })
                .collect(),
        ))
    }

    /// How many orders ended each way, e.g. `failed/insufficient_stock`.
    pub(super) fn outcomes(&self) -> BTreeMap<String, usize> {
        let mut outcomes = BTreeMap::new();
        for row in self.0.values() {
            let outcome = match &row.error_code {
                Some(code) => format!("{}/{code}", row.status),
                None => row.status.clone(),
            };
            *outcomes.entry(outcome).or_default() += 1;
        }
        outcomes
    }

    fn status(&self, workflow_id: &str) -> Option<&str> {
        self.0.get(workflow_id).map(|r| r.status.as_str())
    }
}

fn terminal(status: &str) -> bool {
    matches!(status, "completed" | "failed" | "cancelled")
}

pub(super) async fn check(
    findings: &mut Findings,
    db: &mut PgConnection,
    orders: &Orders,
    attempts: &[OrderAttempt],
) -> anyhow::Result<()> {
    check_ends(findings, orders, attempts);
    check_idempotency(findings, db, attempts).await?;
    check_cancellations(findings, orders, attempts);
    check_identity(findings, orders, attempts);
    Ok(())
}

/// Every acknowledged order exists, and every order ended, whether or not anyone knows of it.
fn check_ends(findings: &mut Findings, orders: &Orders, attempts: &[OrderAttempt]) {
    let unknown = attempts
        .iter()
        .filter_map(OrderAttempt::workflow_id)
        .filter(|w| orders.status(w).is_none())
        .map(str::to_owned)
        .collect();
    findings.expect_none(Invariant::AcknowledgedOrderUnknown, unknown);

    let now = Utc::now();
    let open = orders
        .0
        .iter()
        .filter(|(_, row)| !terminal(&row.status))
        .map(|(w, row)| match row.hold_expires_at {
            Some(hold) if hold < now => format!("{w} ({}, past its payment hold)", row.status),
            _ => format!("{w} ({})", row.status),
        })
        .collect();
    findings.expect_none(Invariant::OrderNotFinished, open);
}

/// One Idempotency-Key, one order: every 2xx for a key named the same workflow, and it is the
/// one the key is stored against.
async fn check_idempotency(
    findings: &mut Findings,
    db: &mut PgConnection,
    attempts: &[OrderAttempt],
) -> anyhow::Result<()> {
    let keys: HashMap<String, String> = sqlx::query!("SELECT key, order_id FROM idempotency_keys")
        .fetch_all(db)
        .await?
        .into_iter()
        .map(|r| (r.key, format!("order-{}", r.order_id)))
        .collect();
    let split_keys = attempts
        .iter()
        .filter_map(|a| Some((a.idempotency_key.as_ref()?, a)))
        .filter(|(key, a)| {
            a.acknowledged.iter().any(|w| Some(w) != a.acknowledged.first())
                || a.workflow_id().is_some_and(|w| keys.get(*key).map(String::as_str) != Some(w))
        })
        .map(|(key, a)| format!("{key} → {:?}", a.acknowledged))
        .collect();
    findings.expect_none(Invariant::IdempotencyKeySplit, split_keys);
    Ok(())
}

/// A cancellation's answer is the truth: accepted (202) ends the order cancelled, refused (409)
/// does not; and an order nobody asked to cancel never is.
fn check_cancellations(findings: &mut Findings, orders: &Orders, attempts: &[OrderAttempt]) {
    let broken_promises = attempts
        .iter()
        .filter(|a| a.cancel == Some(202))
        .filter_map(OrderAttempt::workflow_id)
        .filter(|w| orders.status(w).is_some_and(|s| s != "cancelled"))
        .map(str::to_owned)
        .collect();
    findings.expect_none(Invariant::CancelAcceptedNotHonoured, broken_promises);
    let false_refusals = attempts
        .iter()
        .filter(|a| a.cancel == Some(409))
        .filter_map(OrderAttempt::workflow_id)
        .filter(|w| orders.status(w) == Some("cancelled"))
        .map(str::to_owned)
        .collect();
    findings.expect_none(Invariant::CancelRefusedButCancelled, false_refusals);
    let unasked = attempts
        .iter()
        .filter(|a| !a.cancel_requested)
        .filter_map(OrderAttempt::workflow_id)
        .filter(|w| orders.status(w) == Some("cancelled"))
        .map(str::to_owned)
        .collect();
    findings.expect_none(Invariant::CancelledWithoutRequest, unasked);
}

/// Identity: every order is its token's customer's, and nobody learned of another's.
fn check_identity(findings: &mut Findings, orders: &Orders, attempts: &[OrderAttempt]) {
    let misattributed = attempts
        .iter()
        .filter_map(|a| Some((a.workflow_id()?, a)))
        .filter_map(|(w, a)| Some((w, a, &orders.0.get(w)?.customer_id)))
        .filter(|(_, a, owner)| **owner != a.customer)
        .map(|(w, a, owner)| format!("{w} placed by {} recorded for {owner}", a.customer))
        .collect();
    findings.expect_none(Invariant::OrderOfAnotherCustomer, misattributed);
    let seen_by_others = attempts
        .iter()
        .filter(|a| a.snooped.iter().any(|code| *code < 500 && *code != 404))
        .map(|a| format!("{} got {:?} for another's order", a.customer, a.snooped))
        .collect();
    findings.expect_none(Invariant::NosyCustomerServed, seen_by_others);
}
