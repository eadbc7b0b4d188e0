//! The benchmark: OrderFlow (`orderflow serve`, release build) against its own Temporal dev
//! server and a fresh database, driven over HTTP, next to the engine baseline on the same
//! server, in one run. Writes the results as JSON and a latency/throughput plot (SVG).
//!
//! Phases, in order: baseline at saturation; OrderFlow at saturation; one order in flight;
//! an open-loop sweep at fractions of the saturated rate (the plot; the 50% point is "half the
//! maximum rate"); `GET /api/orders/status` reads; overload (open loop at twice the saturated
//! rate, where admission control must shed); a burst of simultaneous orders. Latencies count
//! from each order's scheduled send time (see [`driver`]: no coordinated omission).
//!
//! Every phase also records the workflow tasks the Temporal server timed out during it (read
//! once no workflow runs any more, since a task can time out after its order is terminal), the
//! orders shed or left unfinished, and whether `orderflow serve` still runs and its memory.
//!
//! `--soak-minutes` runs a different program instead: a short saturation, then half that rate
//! for the given minutes, one sample a minute ([`soak`]).

pub mod baseline;
mod driver;
pub mod payments;
mod plot;
mod report;
mod slow_sockets;
mod soak;
pub mod stats;
pub mod versioning;

use crate::cluster::{Cluster, ClusterConfig, ProviderConfig};
use baseline::{BaselineHost, Shape};
use driver::{
    BaselineTarget, Customers, Mode, OrderTarget, Outcome, SETTLE, StatusTarget, Target, drive,
};
pub use report::{BenchReport, Phase};
use stats::{Percentiles, Probe, is_alive, rss_mib};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct BenchConfig {
    pub orderflow_bin: PathBuf,
    pub temporal_cli: PathBuf,
    pub database_url: String,
    /// The dev server's port. `None`: a free one, picked at start.
    pub temporal_port: Option<u16>,
    /// The port of `orderflow serve`. `None`: a free one, picked at start.
    pub http_port: Option<u16>,
    /// Extra `temporal server start-dev` arguments (SQLite pragmas).
    pub temporal_args: Vec<String>,
    /// Environment of the `orderflow serve` process (worker slots, pool size, ...).
    pub service_env: Vec<(String, String)>,
    pub baseline: Shape,
    /// Length of each saturated or fixed-rate phase.
    pub phase: Duration,
    /// Clients in flight for the saturated phases.
    pub concurrency: usize,
    /// Open-loop rates of the sweep, as fractions of OrderFlow's saturated rate.
    pub sweep: Vec<f64>,
    pub status_connections: usize,
    /// Sockets one address holds open without finishing its headers during a second run of
    /// the status reads (0: no such run).
    pub slow_sockets: usize,
    /// Length of the overload phase (open loop at twice the saturated rate).
    pub overload: Duration,
    /// Orders sent at once in the burst phase.
    pub burst: usize,
    /// Run the soak instead of the phases: this many minutes at half the saturated rate.
    pub soak_minutes: Option<u32>,
    /// Orders parked waiting for their customers in the payment phases (0: no payment
    /// phases).
    pub parked: usize,
    pub work_dir: PathBuf,
    pub label: String,
}

/// What every phase reads besides its own samples: the processes' CPU, the Temporal server's
/// counters and the service process.
struct Watch<'a> {
    cluster: &'a Cluster,
    probes: Vec<(String, Probe)>,
    service_pid: i32,
    temporal_pid: i32,
}

const OVERLOAD: &str = "orderflow, overload";
const BURST: &str = "orderflow, burst";
/// The saturation measured before a soak: long enough to know the rate, short next to the soak.
const SOAK_SATURATION: Duration = Duration::from_secs(15);

pub async fn run(config: BenchConfig) -> anyhow::Result<BenchReport> {
    let products: Vec<(String, String, i32)> =
        (0..20).map(|i| (format!("bench-{i:02}"), format!("{}.99", 10 + i), 10_000_000)).collect();
    let cluster_config = ClusterConfig {
        orderflow_bin: config.orderflow_bin.clone(),
        temporal_cli: config.temporal_cli.clone(),
        database_url: config.database_url.clone(),
        // Of this run alone: a `make soak` and the test suite's benchmark may run at once.
        database_name: format!("orderflow_bench_{}", std::process::id()),
        temporal_port: config.temporal_port,
        temporal_metrics: true,
        temporal_args: config.temporal_args.clone(),
        http_port: config.http_port,
        apis: 0,
        workers: 0,
        servers: 1,
        // Parked orders wait as long as the benchmark needs them to. Its customers come from
        // many addresses (`Customers`), each within the default share of connections.
        env: vec![
            ("PAYMENT_CONFIRMATION_TIMEOUT_MS".into(), "3600000".into()),
            ("HTTP_MAX_CONNECTIONS_PER_CLIENT".into(), "64".into()),
        ],
        worker_env: config.service_env.clone(),
        task_queue: "bench-orders".into(),
        products: products.clone(),
        work_dir: config.work_dir.clone(),
        // Payments through the provider over HTTP, authorized at once (the payment phases
        // change that).
        provider: Some(ProviderConfig {
            env: vec![("PSP_ACTION_REQUIRED_RATE".into(), "0".into())],
            webhook_secret: "whsec_benchmark_signing_secret_0123456789".into(),
        }),
        worker_deployment: None,
    };
    let mut cluster = Cluster::start(&cluster_config).await?;
    let service_pid = cluster.servers[0].pid().unwrap_or(0);
    let temporal_pid = cluster.temporal.pid().unwrap_or(0);
    let watch = Watch {
        cluster: &cluster,
        probes: vec![
            ("orderflow".to_owned(), Probe::Pid(service_pid)),
            ("temporal".to_owned(), Probe::Pid(temporal_pid)),
            ("postgres".to_owned(), Probe::Name("postgres".into())),
            ("bench".to_owned(), Probe::Myself),
        ],
        service_pid,
        temporal_pid,
    };
    let priced: Vec<(String, String)> =
        products.iter().map(|(id, price, _)| (id.clone(), price.clone())).collect();
    let result = match config.soak_minutes {
        Some(minutes) => soak_run(&config, &watch, products, minutes).await,
        None => phases(&config, &watch, products).await,
    };
    // Last: they restart the service (and the provider).
    let result = match result {
        Ok(mut report) if config.soak_minutes.is_none() => {
            let (phase, concurrency) = (config.phase, config.concurrency);
            match versioning::run(&mut cluster, &priced, phase, concurrency).await {
                Ok(cost) => report.versioning = Some(cost),
                Err(e) => println!("!!! THE VERSIONING PHASES FAILED: {e:#}"),
            }
            Ok(report)
        }
        other => other,
    };
    let result = match result {
        Ok(mut report) if config.soak_minutes.is_none() && config.parked > 0 => {
            let (parked, phase, concurrency) = (config.parked, config.phase, config.concurrency);
            // A failure here keeps the phases measured before it.
            match payments::run(&mut cluster, &priced, parked, phase, concurrency).await {
                Ok(payments) => report.payments = Some(payments),
                Err(e) => println!("!!! THE PAYMENT PHASES FAILED: {e:#}"),
            }
            Ok(report)
        }
        other => other,
    };
    cluster.shutdown().await;
    result
}

/// The orders target, warmed up: connections, caches, the cold SQLite of the dev server.
async fn warm_orders(cluster: &Cluster, products: Vec<(String, String, i32)>) -> Arc<OrderTarget> {
    let priced = products.into_iter().map(|(id, price, _)| (id, price)).collect();
    let orders =
        OrderTarget::new(cluster.api_urls[0].clone(), priced, cluster.store.pool().clone());
    drive(
        orders.clone(),
        Mode::Closed { concurrency: 4 },
        Duration::from_secs(2),
        "orderflow warm-up",
    )
    .await;
    orders
}

async fn soak_run(
    config: &BenchConfig,
    watch: &Watch<'_>,
    products: Vec<(String, String, i32)>,
    minutes: u32,
) -> anyhow::Result<BenchReport> {
    let orders = warm_orders(watch.cluster, products).await;
    let saturated = Mode::Closed { concurrency: config.concurrency };
    let max =
        measure("orderflow, saturated", orders.clone(), saturated, SOAK_SATURATION, watch).await?;
    let rate = (max.throughput * 0.5).max(1.0);
    let soak = soak::run(orders, rate, minutes, watch).await?;
    Ok(BenchReport {
        label: config.label.clone(),
        commit: crate::commit(),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        machine: machine(),
        baseline_shape: config.baseline,
        phases: vec![max],
        ratio_to_baseline: 0.0,
        steps: Vec::new(),
        soak,
        payments: None,
        versioning: None,
    })
}

/// The phases, in the order of the module's doc: each later one depends on an earlier one
/// (the saturated rate sets the sweep's and the overload's, the status reads ask about the
/// orders placed before them).
async fn phases(
    config: &BenchConfig,
    watch: &Watch<'_>,
    products: Vec<(String, String, i32)>,
) -> anyhow::Result<BenchReport> {
    let cluster = watch.cluster;
    let mut phases = Vec::new();

    let base = baseline_saturated(config, watch).await?;
    let url = cluster.api_urls[0].clone();
    let orders = warm_orders(cluster, products).await;
    let saturated = Mode::Closed { concurrency: config.concurrency };
    let max =
        measure("orderflow, saturated", orders.clone(), saturated, config.phase, watch).await?;
    let ratio = if base.throughput > 0.0 { max.throughput / base.throughput } else { 0.0 };
    let max_rate = max.throughput;
    phases.push(base);
    phases.push(max);
    phases.push(
        measure(
            "orderflow, one in flight",
            orders.clone(),
            Mode::Closed { concurrency: 1 },
            config.phase,
            watch,
        )
        .await?,
    );
    let steps = step_timings(&url, cluster.store.pool()).await?;
    phases.extend(sweep(config, watch, &orders, max_rate).await?);
    phases.extend(status_reads(config, watch, url).await?);
    phases.extend(overload_and_burst(config, watch, orders, max_rate).await?);

    Ok(BenchReport {
        label: config.label.clone(),
        commit: crate::commit(),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        machine: machine(),
        baseline_shape: config.baseline,
        phases,
        ratio_to_baseline: ratio,
        steps,
        soak: Vec::new(),
        payments: None,
        versioning: None,
    })
}

/// The engine baseline at saturation, first: the most the server gives, which OrderFlow's
/// saturated rate is reported against. Its worker stops when this returns, so that it takes
/// nothing from the phases after.
async fn baseline_saturated(config: &BenchConfig, watch: &Watch<'_>) -> anyhow::Result<Phase> {
    let host =
        BaselineHost::start(&watch.cluster.temporal_address, "bench-baseline", config.baseline)
            .await?;
    let baseline = Arc::new(BaselineTarget {
        host,
        prefix: format!("baseline-{}", std::process::id()),
        next: AtomicUsize::new(0),
    });
    // A short warm-up of each path first: connections, caches, the JIT-less but cold SQLite.
    drive(
        baseline.clone(),
        Mode::Closed { concurrency: 4 },
        Duration::from_secs(2),
        "baseline warm-up",
    )
    .await;
    let saturated = Mode::Closed { concurrency: config.concurrency };
    measure("baseline, saturated", baseline, saturated, config.phase, watch).await
}

/// The open-loop sweep (the plot): one phase per fraction of the saturated rate.
async fn sweep(
    config: &BenchConfig,
    watch: &Watch<'_>,
    orders: &Arc<OrderTarget>,
    max_rate: f64,
) -> anyhow::Result<Vec<Phase>> {
    let mut phases = Vec::new();
    for fraction in &config.sweep {
        let rate = (max_rate * fraction).max(1.0);
        let name = format!("orderflow, open loop at {:.0}% ({rate:.1}/s)", fraction * 100.0);
        phases
            .push(measure(&name, orders.clone(), Mode::Open { rate }, config.phase, watch).await?);
    }
    Ok(phases)
}

/// `GET /api/orders/status` at saturation, over the orders the earlier phases placed.
async fn status_reads(
    config: &BenchConfig,
    watch: &Watch<'_>,
    url: String,
) -> anyhow::Result<Vec<Phase>> {
    let workflow_ids: Vec<String> =
        sqlx::query_scalar!("SELECT workflow_id FROM orders LIMIT 5000")
            .fetch_all(watch.cluster.store.pool())
            .await?;
    let status = Arc::new(StatusTarget {
        http: Customers::new()?,
        url: url.clone(),
        workflow_ids,
        next: AtomicUsize::new(0),
    });
    let reads = Mode::Closed { concurrency: config.status_connections };
    let alone =
        measure("GET /api/orders/status", status.clone(), reads, config.phase, watch).await?;
    if config.slow_sockets == 0 {
        return Ok(vec![alone]);
    }
    // The same reads while one address holds `slow_sockets` connections that never finish their
    // headers (slowloris), reopening each one the service closes.
    let address = url.trim_start_matches("http://").parse()?;
    let attack = tokio::spawn(slow_sockets::hold(address, config.slow_sockets));
    let name = format!("GET /api/orders/status beside {} slow sockets", config.slow_sockets);
    let beside = measure(&name, status, reads, config.phase, watch).await;
    attack.abort();
    Ok(vec![alone, beside?])
}

/// Beyond what the service can do, last: open loop at twice the saturated rate, then a burst.
/// Admission control must shed the excess, and what it accepts must still finish, without
/// workflow tasks timing out.
async fn overload_and_burst(
    config: &BenchConfig,
    watch: &Watch<'_>,
    orders: Arc<OrderTarget>,
    max_rate: f64,
) -> anyhow::Result<Vec<Phase>> {
    let rate = (max_rate * 2.0).max(1.0);
    let name = format!("{OVERLOAD} at 2× saturated ({rate:.1}/s)");
    let overload =
        measure(&name, orders.clone(), Mode::Open { rate }, config.overload, watch).await?;
    let name = format!("{BURST} of {}", config.burst);
    let burst = Mode::Burst { count: config.burst };
    Ok(vec![overload, measure(&name, orders, burst, Duration::ZERO, watch).await?])
}

/// Per-step durations of the last 100 orders, from their state objects.
async fn step_timings(
    url: &str,
    pool: &sqlx::PgPool,
) -> anyhow::Result<Vec<(String, Percentiles)>> {
    let ids: Vec<String> =
        sqlx::query_scalar!("SELECT workflow_id FROM orders ORDER BY id DESC LIMIT 100")
            .fetch_all(pool)
            .await?;
    let http = reqwest::Client::new();
    let mut by_step: Vec<(String, Vec<Duration>)> = Vec::new();
    for id in ids {
        let state: serde_json::Value = http
            .get(format!("{url}/api/orders/state?workflow_id={id}"))
            .send()
            .await?
            .json()
            .await?;
        for record in state["step_history"].as_array().into_iter().flatten() {
            let (Some(step), Some(start), Some(end)) = (
                record["step"].as_str(),
                record["started_at"].as_str(),
                record["completed_at"].as_str(),
            ) else {
                continue;
            };
            let took = (chrono::DateTime::parse_from_rfc3339(end)?
                - chrono::DateTime::parse_from_rfc3339(start)?)
            .to_std()
            .unwrap_or_default();
            match by_step.iter_mut().find(|(s, _)| s == step) {
                Some((_, durations)) => durations.push(took),
                None => by_step.push((step.to_owned(), vec![took])),
            }
        }
    }
    Ok(by_step.into_iter().map(|(step, durations)| (step, Percentiles::of(&durations))).collect())
}

async fn measure<T: Target>(
    name: &str,
    target: Arc<T>,
    mode: Mode,
    duration: Duration,
    watch: &Watch<'_>,
) -> anyhow::Result<Phase> {
    let cpu_before: Vec<f64> = watch.probes.iter().map(|(_, p)| p.cpu_seconds()).collect();
    let timeouts_before = watch.cluster.workflow_task_timeouts().await?;
    let started = std::time::Instant::now();
    let Outcome { samples, errors, shed, unfinished, sent } =
        drive(target, mode, duration, name).await;
    let seconds = started.elapsed().as_secs_f64();
    let completed = samples.len();
    let cpu_per_unit = watch
        .probes
        .iter()
        .zip(cpu_before)
        .map(|((name, probe), before)| {
            let used = probe.cpu_seconds() - before;
            (name.clone(), if completed > 0 { used / completed as f64 } else { 0.0 })
        })
        .collect();
    // A workflow task can still time out after its order is terminal in PostgreSQL (the
    // notification step comes after), but not once its workflow has closed.
    let running = watch.cluster.wait_until_no_workflow_runs(SETTLE).await?;
    if running > 0 {
        eprintln!("  {running} workflows still running {} s after the phase", SETTLE.as_secs());
    }
    let timeouts = watch.cluster.workflow_task_timeouts().await?;
    let phase = Phase {
        name: name.to_owned(),
        mode: match mode {
            Mode::Closed { concurrency } => format!("closed loop, {concurrency} in flight"),
            Mode::Open { rate } => format!("open loop, {rate:.1}/s"),
            Mode::Burst { count } => format!("burst of {count} at once"),
        },
        seconds,
        sent,
        completed,
        errors,
        shed,
        unfinished,
        throughput: completed as f64 / seconds,
        latency: Percentiles::of(&samples.iter().map(|s| s.latency).collect::<Vec<_>>()),
        api_response: Percentiles::of(&samples.iter().map(|s| s.response).collect::<Vec<_>>()),
        cpu_per_unit,
        workflow_task_timeouts: timeouts.saturating_sub(timeouts_before),
        service_rss_mib: rss_mib(watch.service_pid),
        service_alive: is_alive(watch.service_pid),
    };
    println!(
        "{name}: {:.1}/s, p50 {:.1} ms, p99 {:.1} ms, errors {}, shed {}, workflow task timeouts {}",
        phase.throughput,
        phase.latency.p50_ms,
        phase.latency.p99_ms,
        phase.errors,
        phase.shed,
        phase.workflow_task_timeouts
    );
    if unfinished > 0 {
        println!("  !!! {unfinished} ACCEPTED ORDERS NOT TERMINAL after {} s", SETTLE.as_secs());
    }
    Ok(phase)
}

fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_default();
    format!("{cpus} CPUs, {model}")
}
