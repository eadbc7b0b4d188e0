//! The payment phases (docs/payments.md): what the provider's extra round trips cost, and what
//! orders cost while they wait for their customers.
//!
//! - **Provider cost**: `orderflow serve` restarted without `PAYMENT_PROVIDER_URL` (the
//!   in-process simulation), saturated; then restarted with the provider again (instant
//!   authorization), saturated. Back to back in one run, on the same database.
//! - **Parked**: the provider switched to "every payment needs the customer, who does not
//!   answer"; `parked` orders are placed and wait in `await_payment`. While they wait: the
//!   service's memory, the CPU of the service and of the Temporal server, the service's
//!   PostgreSQL connections. Then every payment is confirmed at the provider (as the
//!   customer's bank app does), and each order's time from that confirmation to `completed`
//!   (webhook, signal, capture, confirmation) is measured.

use super::driver::{Mode, OrderTarget, drive};
use super::stats::{Percentiles, Probe, rss_mib};
use crate::cluster::Cluster;
use anyhow::Context;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::Serialize;
use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};
use uuid::Uuid;

#[derive(Debug, Serialize)]
pub struct PaymentPhases {
    /// Orders/s saturated with the in-process payment simulation (no provider round trips).
    pub in_process_saturated: f64,
    /// Orders/s saturated through the provider over HTTP, authorization instant.
    pub provider_saturated: f64,
    /// How much slower the provider made the saturated rate, in percent (negative: faster).
    pub provider_cost_percent: f64,
    pub parked: Parked,
}

#[derive(Debug, Serialize)]
pub struct Parked {
    /// Orders parked (placed and waiting for their customer).
    pub orders: usize,
    /// Orders that could not be placed: must be 0.
    pub place_failed: usize,
    /// Orders placed per second while parking them.
    pub placed_per_second: f64,
    /// The window, with every order parked, over which the figures below were taken.
    pub quiet_seconds: f64,
    pub service_rss_mib_before: f64,
    pub service_rss_mib_parked: f64,
    /// CPU use (100 = one core) while every order waits.
    pub service_cpu_percent_parked: f64,
    pub temporal_cpu_percent_parked: f64,
    /// The service's PostgreSQL connections while every order waits (the benchmark's own
    /// pool not counted).
    pub postgres_connections_parked: i64,
    /// Confirmations sent to the provider per second.
    pub confirmed_per_second: f64,
    /// Confirmations the provider did not accept: must be 0.
    pub confirm_failed: usize,
    /// Orders completed per second, from the first confirmation to the last completion. The
    /// simulator's webhook delivery is part of it (it polls its outbox every 100 ms and sends
    /// 64 events at a time, at once while more are due).
    pub completed_per_second: f64,
    /// Each order's confirmation at the provider → its `completed_at` (the benchmark's clock
    /// against PostgreSQL's: both on this machine).
    pub confirmation_to_completed: Percentiles,
    /// Confirmed but not completed within two minutes (50 ms an order for a bigger flood):
    /// must be 0.
    pub unfinished: usize,
    /// Workflow tasks the Temporal server timed out from the first confirmation until every
    /// confirmed order had completed (resumed orders are not paced by admission control).
    pub workflow_task_timeouts: u64,
}

impl std::fmt::Display for PaymentPhases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let p = &self.parked;
        writeln!(
            f,
            "payments: saturated {:.1}/s in process, {:.1}/s through the provider ({:+.1}%)",
            self.in_process_saturated, self.provider_saturated, -self.provider_cost_percent
        )?;
        writeln!(
            f,
            "parked: {} orders ({} not placed), over {:.0} s all waiting: service {:.1} → {:.1} MiB, \
             CPU service {:.1}% temporal {:.1}%, {} PostgreSQL connections",
            p.orders,
            p.place_failed,
            p.quiet_seconds,
            p.service_rss_mib_before,
            p.service_rss_mib_parked,
            p.service_cpu_percent_parked,
            p.temporal_cpu_percent_parked,
            p.postgres_connections_parked
        )?;
        write!(
            f,
            "confirmed: {:.1}/s completed, confirmation → completed p50 {:.0} ms p99 {:.0} ms, \
             {} confirmations failed, {} unfinished, {} workflow task timeouts",
            p.completed_per_second,
            p.confirmation_to_completed.p50_ms,
            p.confirmation_to_completed.p99_ms,
            p.confirm_failed,
            p.unfinished,
            p.workflow_task_timeouts
        )
    }
}

/// Runs both, at the end of a benchmark (they restart processes).
pub async fn run(
    cluster: &mut Cluster,
    products: &[(String, String)],
    parked: usize,
    phase: Duration,
    concurrency: usize,
) -> anyhow::Result<PaymentPhases> {
    let in_process = saturated(cluster, products, false, phase, concurrency).await?;
    let provider = saturated(cluster, products, true, phase, concurrency).await?;
    // Last: it changes the provider's knobs.
    let parked = park_and_confirm(cluster, products, parked, concurrency).await?;
    let cost = if in_process > 0.0 { (1.0 - provider / in_process) * 100.0 } else { 0.0 };
    let phases = PaymentPhases {
        in_process_saturated: in_process,
        provider_saturated: provider,
        provider_cost_percent: cost,
        parked,
    };
    println!("{phases}");
    Ok(phases)
}

/// Restarts `orderflow serve` with or without the provider and measures its saturated rate.
async fn saturated(
    cluster: &mut Cluster,
    products: &[(String, String)],
    with_provider: bool,
    phase: Duration,
    concurrency: usize,
) -> anyhow::Result<f64> {
    let provider = cluster.provider_url.clone().context("the benchmark runs a provider")?;
    let secret = cluster.webhook_secret.clone().context("the benchmark runs a provider")?;
    let server = &mut cluster.servers[0];
    // Without a provider there are no webhooks either (the service refuses a secret alone).
    server.set_env("PAYMENT_PROVIDER_URL", with_provider.then_some(provider.as_str()));
    server.set_env("PAYMENT_WEBHOOK_SECRET", with_provider.then_some(secret.as_str()));
    restart_server(cluster).await?;
    let label = if with_provider { "through the provider" } else { "in process" };
    saturate(cluster, products, phase, concurrency, &format!("payments, saturated {label}")).await
}

/// Restarts `orderflow serve` (with the environment set on it) and waits until it serves.
pub(super) async fn restart_server(cluster: &mut Cluster) -> anyhow::Result<()> {
    let server = &mut cluster.servers[0];
    server.stop(Duration::from_secs(30)).await;
    server.start()?;
    cluster.wait_for_apis().await
}

/// The saturated rate of orders (after a short warm-up), printed under `label`.
pub(super) async fn saturate(
    cluster: &Cluster,
    products: &[(String, String)],
    phase: Duration,
    concurrency: usize,
    label: &str,
) -> anyhow::Result<f64> {
    let orders = OrderTarget::new(
        cluster.api_urls[0].clone(),
        products.to_vec(),
        cluster.store.pool().clone(),
    );
    drive(orders.clone(), Mode::Closed { concurrency: 4 }, Duration::from_secs(2), "warm-up").await;
    let started = Instant::now();
    let outcome = drive(orders, Mode::Closed { concurrency }, phase, label).await;
    let rate = outcome.samples.len() as f64 / started.elapsed().as_secs_f64();
    println!("{label}: {rate:.1}/s ({} errors)", outcome.errors);
    Ok(rate)
}

async fn park_and_confirm(
    cluster: &mut Cluster,
    products: &[(String, String)],
    count: usize,
    concurrency: usize,
) -> anyhow::Result<Parked> {
    let provider_url = cluster.provider_url.clone().context("the benchmark runs a provider")?;
    // Every payment needs the customer, who never answers by themselves.
    let provider = cluster.provider.as_mut().context("the benchmark runs a provider")?;
    provider.set_env("PSP_ACTION_REQUIRED_RATE", Some("1"));
    provider.set_env("PSP_CONFIRM_OUTCOME", Some("never"));
    provider.stop(Duration::from_secs(10)).await;
    provider.start()?;
    let http = reqwest::Client::builder().pool_max_idle_per_host(1024).build()?;
    wait_until_up(&http, &provider_url).await?;
    // Placed by many customers (addresses), as the other phases' orders are: one address's
    // share of the service's connections is smaller than the placement's concurrency.
    let customers = super::driver::Customers::new()?;
    let service_pid = cluster.servers[0].pid().unwrap_or(0);
    let rss_before = rss_mib(service_pid);

    let started = Instant::now();
    let api = cluster.api_urls[0].clone();
    let placed: Vec<anyhow::Result<Uuid>> = futures::stream::iter(0..count)
        .map(|n| place(customers.client(n), &api, products, n))
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let place_failed = placed.iter().filter(|p| p.is_err()).count();
    if let Some(Err(e)) = placed.iter().find(|p| p.is_err()) {
        println!("parked: {place_failed} orders not placed, e.g. {e:#}");
    }
    let orders: Vec<Uuid> = placed.into_iter().filter_map(Result::ok).collect();
    let placed_per_second = orders.len() as f64 / started.elapsed().as_secs_f64();
    println!(
        "parked: {} orders placed ({placed_per_second:.0}/s); waiting for all to park",
        orders.len()
    );
    let pool = cluster.store.pool();
    wait_for(pool, &orders, "current_step = 'await_payment'", Duration::from_secs(300)).await?;

    // All wait: measure a quiet period.
    let quiet = Duration::from_secs(20);
    let probes = [Probe::Pid(service_pid), Probe::Pid(cluster.temporal.pid().unwrap_or(0))];
    let cpu_before: Vec<f64> = probes.iter().map(Probe::cpu_seconds).collect();
    tokio::time::sleep(quiet).await;
    let cpu_percent: Vec<f64> = probes
        .iter()
        .zip(cpu_before)
        .map(|(probe, before)| (probe.cpu_seconds() - before) / quiet.as_secs_f64() * 100.0)
        .collect();
    let all_connections = sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM pg_stat_activity WHERE datname = $1"#,
        cluster.database_name
    )
    .fetch_one(pool)
    .await?;
    let connections = all_connections - i64::from(pool.size());
    let rss_parked = rss_mib(service_pid);

    // The customers confirm, each payment once, at the provider.
    let payments: Vec<(Uuid, String)> = sqlx::query!(
        r#"SELECT order_id, payment_id AS "payment_id!" FROM payments
           WHERE order_id = ANY($1) AND payment_id IS NOT NULL"#,
        &orders
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|r| (r.order_id, r.payment_id))
    .collect();
    let to_confirm = payments.len();
    let timeouts_before = cluster.workflow_task_timeouts().await?;
    let confirming = Instant::now();
    let confirmed: HashMap<Uuid, SystemTime> = futures::stream::iter(payments)
        .map(|(order, payment)| {
            let http = &http;
            let url = format!("{provider_url}/v1/payment_intents/{payment}/confirm");
            async move {
                let sent = SystemTime::now();
                let response =
                    http.post(url).json(&serde_json::json!({"succeed": true})).send().await;
                response.ok().filter(|r| r.status().is_success()).map(|_| (order, sent))
            }
        })
        .buffer_unordered(concurrency)
        .filter_map(|confirmed| async move { confirmed })
        .collect()
        .await;
    let confirmed_per_second = confirmed.len() as f64 / confirming.elapsed().as_secs_f64();
    let ids: Vec<Uuid> = confirmed.keys().copied().collect();
    // Two minutes, or longer for a big flood (resuming an order that left the worker's cache
    // replays its history first): long enough that "unfinished" means stuck, not queued.
    let bound = Duration::from_secs(120).max(Duration::from_millis(50) * ids.len() as u32);
    let finished = wait_for(pool, &ids, "completed_at IS NOT NULL", bound).await;
    let completed: Vec<(Uuid, DateTime<Utc>)> = sqlx::query!(
        r#"SELECT id, completed_at AS "completed_at!" FROM orders
           WHERE id = ANY($1) AND status = 'completed'"#,
        &ids
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|r| (r.id, r.completed_at))
    .collect();
    let latencies: Vec<Duration> = completed
        .iter()
        .map(|(id, at)| SystemTime::from(*at).duration_since(confirmed[id]).unwrap_or_default())
        .collect();
    cluster.wait_until_no_workflow_runs(Duration::from_secs(60)).await?;
    let workflow_task_timeouts =
        cluster.workflow_task_timeouts().await?.saturating_sub(timeouts_before);
    let last = completed.iter().map(|(_, at)| *at).max();
    let span = last
        .and_then(|last| {
            SystemTime::from(last).duration_since(SystemTime::now() - confirming.elapsed()).ok()
        })
        .unwrap_or_default();
    if let Err(e) = finished {
        println!("parked: {e}");
    }
    Ok(Parked {
        orders: orders.len(),
        place_failed,
        placed_per_second,
        quiet_seconds: quiet.as_secs_f64(),
        service_rss_mib_before: rss_before,
        service_rss_mib_parked: rss_parked,
        service_cpu_percent_parked: cpu_percent[0],
        temporal_cpu_percent_parked: cpu_percent[1],
        postgres_connections_parked: connections,
        confirmed_per_second,
        confirm_failed: to_confirm - confirmed.len() + (orders.len() - to_confirm),
        completed_per_second: completed.len() as f64 / span.as_secs_f64().max(0.001),
        confirmation_to_completed: Percentiles::of(&latencies),
        workflow_task_timeouts,
        unfinished: confirmed.len() - completed.len(),
    })
}

/// Places order `n`; retries while the service sheds (it should not: waiting orders do not
/// count as in flight).
async fn place(
    http: &reqwest::Client,
    api: &str,
    products: &[(String, String)],
    n: usize,
) -> anyhow::Result<Uuid> {
    let (product, price) = &products[n % products.len()];
    let body = serde_json::json!({
        "customer_id": format!("parked-{}", n % 1000),
        "items": [{"product_id": product, "name": product, "quantity": 1, "price": price}]
    });
    for _ in 0..100 {
        let response = http.post(format!("{api}/api/orders")).json(&body).send().await?;
        if response.status() == reqwest::StatusCode::SERVICE_UNAVAILABLE {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        let accepted: serde_json::Value = response.error_for_status()?.json().await?;
        return Ok(accepted["order_id"].as_str().unwrap_or_default().parse()?);
    }
    anyhow::bail!("order {n} shed 100 times")
}

/// Waits until every one of `orders` matches `condition` (SQL on `orders`).
async fn wait_for(
    pool: &sqlx::PgPool,
    orders: &[Uuid],
    condition: &str,
    bound: Duration,
) -> anyhow::Result<()> {
    let query = format!("SELECT count(*) FROM orders WHERE id = ANY($1) AND {condition}");
    let deadline = Instant::now() + bound;
    loop {
        let matching: i64 = sqlx::query_scalar(&query).bind(orders).fetch_one(pool).await?;
        if matching as usize >= orders.len() {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {matching} of {} orders reached {condition} within {bound:?}",
            orders.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn wait_until_up(http: &reqwest::Client, provider: &str) -> anyhow::Result<()> {
    for _ in 0..300 {
        let answer = http.get(format!("{provider}/v1/payment_intents?limit=1")).send().await;
        if answer.is_ok_and(|r| r.status().is_success()) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("the provider did not come back")
}
