//! The invariants, checked from PostgreSQL, Temporal and the clients' records once the cluster
//! is quiet. Each returns the orders that break it (a few examples, and how many).

use super::load::OrderAttempt;
use crate::cluster::Cluster;
use futures::StreamExt;
use orderflow_workflow::OrderWorkflow;
use std::collections::{BTreeMap, HashMap};
use temporalio_client::{
    Client, WorkflowCountOptions, WorkflowFetchHistoryOptions, WorkflowHistory, WorkflowListOptions,
};
use temporalio_sdk::workflow_replayer::{WorkflowReplayer, WorkflowReplayerOptions};

pub struct Findings {
    pub violations: Vec<String>,
    /// Orders in PostgreSQL by outcome, e.g. `failed/insufficient_stock`.
    pub outcomes: BTreeMap<String, usize>,
    pub checks: usize,
    pub replayed: usize,
}

impl Findings {
    fn expect_none(&mut self, what: &str, offenders: Vec<String>) {
        self.checks += 1;
        if !offenders.is_empty() {
            let examples: Vec<_> = offenders.iter().take(5).cloned().collect();
            self.violations.push(format!(
                "{what}: {} case(s), e.g. {}",
                offenders.len(),
                examples.join(", ")
            ));
        }
    }
}

/// Checks every invariant, in a fixed order (the report lists the violations in it): the
/// orders' ends, idempotency, cancellations, identity, stock, settlement, then Temporal's side.
pub async fn check(
    cluster: &Cluster,
    temporal: &Client,
    attempts: &[OrderAttempt],
    replay_sample: usize,
) -> anyhow::Result<Findings> {
    let mut findings =
        Findings { violations: Vec::new(), outcomes: BTreeMap::new(), checks: 0, replayed: 0 };
    let pool = cluster.store.pool();
    let orders = Orders::load(pool).await?;
    findings.outcomes = orders.outcomes();
    check_termination(&mut findings, attempts, &orders);
    check_idempotency(&mut findings, pool, attempts).await?;
    check_cancellations(&mut findings, attempts, &orders);
    check_identity(&mut findings, attempts, &orders);
    check_stock(&mut findings, cluster).await?;
    check_settlement(&mut findings, pool).await?;
    if let Some(provider) = &cluster.provider_url {
        check_ledger(&mut findings, pool, provider).await?;
    }
    check_workflows(&mut findings, cluster, temporal, replay_sample).await?;
    Ok(findings)
}

/// The orders table, read once: most checks hold the clients' records against it.
struct Orders {
    /// workflow id → (status, error code)
    status: HashMap<String, (String, Option<String>)>,
    /// workflow id → customer id
    owners: HashMap<String, String>,
}

impl Orders {
    async fn load(pool: &sqlx::PgPool) -> anyhow::Result<Self> {
        let rows: Vec<(String, String, Option<String>, String)> =
            sqlx::query!("SELECT workflow_id, status, error_code, customer_id FROM orders")
                .fetch_all(pool)
                .await?
                .into_iter()
                .map(|r| (r.workflow_id, r.status, r.error_code, r.customer_id))
                .collect();
        let owners: HashMap<String, String> =
            rows.iter().map(|(w, _, _, customer)| (w.clone(), customer.clone())).collect();
        let status: HashMap<String, (String, Option<String>)> =
            rows.into_iter().map(|(w, s, c, _)| (w, (s, c))).collect();
        Ok(Self { status, owners })
    }

    /// How many orders ended each way, e.g. `failed/insufficient_stock`.
    fn outcomes(&self) -> BTreeMap<String, usize> {
        let mut outcomes = BTreeMap::new();
        for (status, code) in self.status.values() {
            let outcome = match code {
                Some(code) => format!("{status}/{code}"),
                None => status.clone(),
            };
            *outcomes.entry(outcome).or_default() += 1;
        }
        outcomes
    }
}

fn terminal(status: &str) -> bool {
    matches!(status, "completed" | "failed" | "cancelled")
}

/// Every order ended: the acknowledged ones the clients know of, and every row in the table.
fn check_termination(findings: &mut Findings, attempts: &[OrderAttempt], orders: &Orders) {
    let orders = &orders.status;
    // Every acknowledged order reached a terminal state.
    let not_finished = attempts
        .iter()
        .filter_map(OrderAttempt::workflow_id)
        .filter(|w| !orders.get(*w).is_some_and(|(s, _)| terminal(s)))
        .map(|w| format!("{w} ({})", orders.get(w).map_or("no order row", |(s, _)| s.as_str())))
        .collect();
    findings.expect_none("acknowledged order not in a terminal state", not_finished);

    // Nothing at all is left half-done, acknowledged or not.
    let open = orders
        .iter()
        .filter(|(_, (s, _))| !terminal(s))
        .map(|(w, (s, _))| format!("{w} ({s})"))
        .collect();
    findings.expect_none("order not in a terminal state", open);
}

/// One Idempotency-Key, one order: every 2xx for a key named the same workflow, and it is the
/// one the key is stored against.
async fn check_idempotency(
    findings: &mut Findings,
    pool: &sqlx::PgPool,
    attempts: &[OrderAttempt],
) -> anyhow::Result<()> {
    let keys: HashMap<String, String> = sqlx::query!("SELECT key, order_id FROM idempotency_keys")
        .fetch_all(pool)
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
    findings.expect_none("Idempotency-Key answered with more than one order", split_keys);
    Ok(())
}

/// An accepted cancellation (202) always ends the order cancelled.
fn check_cancellations(findings: &mut Findings, attempts: &[OrderAttempt], orders: &Orders) {
    let broken_promises = attempts
        .iter()
        .filter(|a| a.cancel == Some(202))
        .filter_map(OrderAttempt::workflow_id)
        .filter(|w| orders.status.get(*w).is_none_or(|(s, _)| s != "cancelled"))
        .map(str::to_owned)
        .collect();
    findings.expect_none("cancellation accepted (202) but order not cancelled", broken_promises);
}

/// Identity: every order is its token's customer's, nobody learned of or cancelled another
/// customer's order, and only owners cancelled.
fn check_identity(findings: &mut Findings, attempts: &[OrderAttempt], orders: &Orders) {
    let owners = &orders.owners;
    let misattributed = attempts
        .iter()
        .filter_map(|a| Some((a.workflow_id()?, a)))
        .filter(|(w, a)| owners.get(*w).is_some_and(|owner| *owner != a.customer))
        .map(|(w, a)| format!("{w} placed by {} recorded for {:?}", a.customer, owners.get(w)))
        .collect();
    findings.expect_none("order recorded for another customer than its token's", misattributed);
    let seen_by_others = attempts
        .iter()
        .filter(|a| a.snooped.iter().any(|code| *code < 500 && *code != 404))
        .map(|a| format!("{} got {:?} for another's order", a.customer, a.snooped))
        .collect();
    findings.expect_none("another customer's order answered other than 404", seen_by_others);
    let cancelled_by_others = attempts
        .iter()
        .filter(|a| !a.cancel_requested)
        .filter_map(OrderAttempt::workflow_id)
        .filter(|w| orders.status.get(*w).is_some_and(|(s, _)| s == "cancelled"))
        .map(str::to_owned)
        .collect();
    findings.expect_none("order cancelled though its customer never asked", cancelled_by_others);
}

/// Stock: never negative, nothing created or lost, reserved/sold match the reservations.
async fn check_stock(findings: &mut Findings, cluster: &Cluster) -> anyhow::Result<()> {
    let pool = cluster.store.pool();
    let products: Vec<(String, i32, i32, i32, i64, i64)> = sqlx::query!(
        r#"SELECT p.id, p.available, p.reserved, p.sold,
                  COALESCE(SUM(r.quantity) FILTER (WHERE r.status = 'held'), 0) AS "held!",
                  COALESCE(SUM(r.quantity) FILTER (WHERE r.status = 'sold'), 0) AS "sold_rows!"
           FROM products p LEFT JOIN reservations r ON r.product_id = p.id
           GROUP BY p.id ORDER BY p.id"#
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|r| (r.id, r.available, r.reserved, r.sold, r.held, r.sold_rows))
    .collect();
    let stock_errors = products
        .iter()
        .filter(|(id, available, reserved, sold, held, sold_rows)| {
            let initial = cluster.initial_stock.get(id).copied().unwrap_or(*available + *reserved + *sold);
            *available < 0
                || available + reserved + sold != initial
                || i64::from(*reserved) != *held
                || i64::from(*sold) != *sold_rows
                || *reserved != 0
        })
        .map(|(id, a, r, s, h, sr)| {
            format!("{id}: available {a} reserved {r} sold {s}, held rows {h}, sold rows {sr}, initial {:?}", cluster.initial_stock.get(id))
        })
        .collect();
    findings.expect_none("stock oversold, lost, or still reserved", stock_errors);
    Ok(())
}

/// Settlement: what each outcome leaves behind in stock and money. What failed or was cancelled
/// holds no stock and keeps no money; what completed is paid exactly once and its stock sold.
async fn check_settlement(findings: &mut Findings, pool: &sqlx::PgPool) -> anyhow::Result<()> {
    // Failed and cancelled orders hold no stock and keep no money.
    findings.expect_none(
        "failed or cancelled order still holding or selling stock",
        sqlx::query_scalar!(r#"SELECT DISTINCT o.workflow_id AS "offender?" FROM orders o JOIN reservations r ON r.order_id = o.id
                         WHERE o.status IN ('failed', 'cancelled') AND r.status <> 'released'"#).fetch_all(pool).await?.into_iter().flatten().collect::<Vec<String>>(),
    );
    // ... and no authorization left open: voided, refunded or failed, captured − refunded = 0.
    findings.expect_none(
        "failed or cancelled order with money taken or held",
        sqlx::query_scalar!(r#"SELECT o.workflow_id AS "offender?" FROM orders o JOIN payments p ON p.order_id = o.id
                         WHERE o.status IN ('failed', 'cancelled')
                           AND (p.status IN ('captured', 'authorized', 'requires_action')
                                OR p.captured <> p.refunded)"#).fetch_all(pool).await?.into_iter().flatten().collect::<Vec<String>>(),
    );
    // Completed orders are paid exactly once, for their total, and their stock is sold.
    findings.expect_none(
        "completed order not paid exactly its total",
        sqlx::query_scalar!(r#"SELECT o.workflow_id AS "offender?" FROM orders o LEFT JOIN payments p ON p.order_id = o.id
                         WHERE o.status = 'completed'
                           AND (p.order_id IS NULL OR p.status <> 'captured' OR p.amount <> o.total_amount
                                OR p.captured <> o.total_amount OR p.refunded <> 0)"#).fetch_all(pool).await?.into_iter().flatten().collect::<Vec<String>>(),
    );
    // No order waits for its payment past its stock hold (a minute's grace for the timer).
    findings.expect_none(
        "order waiting for its payment past its hold",
        sqlx::query_scalar!(
            r#"SELECT workflow_id AS "offender?" FROM orders
                         WHERE status NOT IN ('completed', 'failed', 'cancelled')
                           AND hold_expires_at < now() - interval '1 minute'"#
        )
        .fetch_all(pool)
        .await?
        .into_iter()
        .flatten()
        .collect::<Vec<String>>(),
    );
    findings.expect_none(
        "completed order whose lines are not all sold",
        sqlx::query_scalar!(r#"SELECT DISTINCT o.workflow_id AS "offender?" FROM orders o
                         JOIN order_items i ON i.order_id = o.id
                         LEFT JOIN reservations r ON r.order_id = i.order_id AND r.product_id = i.product_id
                         WHERE o.status = 'completed'
                           AND (r.order_id IS NULL OR r.status <> 'sold' OR r.quantity <> i.quantity)"#).fetch_all(pool).await?.into_iter().flatten().collect::<Vec<String>>(),
    );
    // No order charged twice: more than one payment row or provider id for an order.
    findings.expect_none(
        "order charged more than once",
        sqlx::query_scalar!(r#"SELECT 'order-' || order_id AS "offender?" FROM payments GROUP BY order_id HAVING count(*) > 1
                         UNION ALL
                         SELECT payment_id FROM payments WHERE payment_id IS NOT NULL
                         GROUP BY payment_id HAVING count(*) > 1"#).fetch_all(pool).await?.into_iter().flatten().collect::<Vec<String>>(),
    );
    Ok(())
}

/// The payment provider's side, from its own ledger (its API): what OrderFlow believes about
/// money is only worth what the provider's books say.
async fn check_ledger(
    findings: &mut Findings,
    pool: &sqlx::PgPool,
    provider: &str,
) -> anyhow::Result<()> {
    use rust_decimal::Decimal;
    let intents = ledger(provider).await?;
    let orders: HashMap<String, (String, String, Decimal)> =
        sqlx::query!("SELECT id::text AS \"id!\", workflow_id, status, total_amount FROM orders")
            .fetch_all(pool)
            .await?
            .into_iter()
            .map(|r| (r.id, (r.workflow_id, r.status, r.total_amount)))
            .collect();
    let read = |intent: &serde_json::Value, field: &str| -> Option<Decimal> {
        intent[field].as_str().and_then(|a| a.parse().ok())
    };
    // An intent whose amounts cannot be read would pass every comparison below unseen.
    let unreadable: Vec<String> = intents
        .iter()
        .filter(|i| ["amount", "captured", "refunded"].iter().any(|f| read(i, f).is_none()))
        .map(|i| i["id"].to_string())
        .collect();
    let amount = |intent: &serde_json::Value, field: &str| read(intent, field).unwrap_or_default();
    let status = |intent: &serde_json::Value| intent["status"].as_str().unwrap_or("").to_owned();
    let open = |intent: &serde_json::Value| {
        matches!(status(intent).as_str(), "authorized" | "requires_action")
    };
    let mut per_order: HashMap<&str, Vec<&serde_json::Value>> = HashMap::new();
    for intent in &intents {
        per_order.entry(intent["order_id"].as_str().unwrap_or("")).or_default().push(intent);
    }
    let (mut unpaid, mut kept, mut strangers) = (Vec::new(), Vec::new(), Vec::new());
    for (order, (workflow_id, order_status, total)) in &orders {
        let theirs = per_order.get(order.as_str()).map(Vec::as_slice).unwrap_or_default();
        match order_status.as_str() {
            "completed" => {
                let paid = matches!(theirs, [one] if status(one) == "captured"
                    && amount(one, "captured") == *total && amount(one, "refunded").is_zero());
                if !paid {
                    unpaid.push(workflow_id.clone());
                }
            }
            "failed" | "cancelled"
                if theirs
                    .iter()
                    .any(|i| open(i) || amount(i, "captured") != amount(i, "refunded")) =>
            {
                kept.push(workflow_id.clone());
            }
            _ => {}
        }
    }
    for (order, theirs) in &per_order {
        if !orders.contains_key(*order)
            && theirs.iter().any(|i| open(i) || amount(i, "captured") != amount(i, "refunded"))
        {
            strangers.push(order.to_string());
        }
    }
    let open_anywhere: Vec<String> =
        intents.iter().filter(|i| open(i)).map(|i| i["id"].to_string()).collect();
    findings.expect_none(
        "completed order without exactly one intent captured for its total (provider's ledger)",
        unpaid,
    );
    findings
        .expect_none("failed or cancelled order with money held or taken at the provider", kept);
    findings.expect_none("money held or taken at the provider for an unknown order", strangers);
    findings.expect_none("authorization left open at the provider", open_anywhere);
    findings.expect_none("payment intent with unreadable amounts in the ledger", unreadable);
    Ok(())
}

/// Every payment intent in the provider's ledger, oldest first, a page at a time.
async fn ledger(provider: &str) -> anyhow::Result<Vec<serde_json::Value>> {
    let http = reqwest::Client::new();
    let mut intents: Vec<serde_json::Value> = Vec::new();
    loop {
        let mut url = format!("{provider}/v1/payment_intents?limit=1000");
        if let Some(last) = intents.last().and_then(|i| i["id"].as_str()) {
            url.push_str(&format!("&after={last}"));
        }
        let page: serde_json::Value =
            http.get(url).send().await?.error_for_status()?.json().await?;
        let page = page["data"].as_array().cloned().unwrap_or_default();
        if page.is_empty() {
            return Ok(intents);
        }
        intents.extend(page);
    }
}

/// Temporal's side: no workflow left open, and no non-determinism.
async fn check_workflows(
    findings: &mut Findings,
    cluster: &Cluster,
    temporal: &Client,
    replay_sample: usize,
) -> anyhow::Result<()> {
    // No workflow left open.
    let running = temporal
        .count_workflows(
            format!("TaskQueue = '{}' AND ExecutionStatus = 'Running'", cluster.task_queue),
            WorkflowCountOptions::default(),
        )
        .await?
        .count();
    findings.expect_none(
        "workflow still running",
        if running > 0 { vec![format!("{running} open workflow(s)")] } else { vec![] },
    );

    // No non-determinism: none reported by any worker, and histories replay with this code.
    let mut nondeterministic = Vec::new();
    for log in cluster.worker_logs() {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let hits = text
            .lines()
            .filter(|l| l.contains("TMPRL1100") || l.contains("Nondeterminism"))
            .count();
        if hits > 0 {
            nondeterministic.push(format!("{}: {hits} line(s)", log.display()));
        }
    }
    let (replayed, failures) = replay(temporal, &cluster.task_queue, replay_sample).await?;
    findings.replayed = replayed;
    nondeterministic.extend(failures);
    findings.expect_none("non-determinism", nondeterministic);
    Ok(())
}

/// Replays up to `limit` closed workflows of the run with the current workflow code.
async fn replay(
    temporal: &Client,
    task_queue: &str,
    limit: usize,
) -> anyhow::Result<(usize, Vec<String>)> {
    let options = WorkflowReplayerOptions::new().register_workflow::<OrderWorkflow>()?.build();
    let replayer = WorkflowReplayer::new(options)?;
    let mut ids = Vec::new();
    let mut list = temporal.list_workflows(
        format!("TaskQueue = '{task_queue}'"),
        WorkflowListOptions::builder().limit(limit).build(),
    );
    while let Some(execution) = list.next().await {
        ids.push(execution?.id().to_owned());
    }
    let mut failures = Vec::new();
    for id in &ids {
        let handle = temporal.get_workflow_handle::<OrderWorkflow>(id.clone());
        let json = handle.fetch_history(WorkflowFetchHistoryOptions::default()).to_json().await?;
        if let Err(e) = replayer.replay_workflow(WorkflowHistory::from_json(&json)?).await {
            failures.push(format!("{id}: {e}"));
        }
    }
    Ok((ids.len(), failures))
}
