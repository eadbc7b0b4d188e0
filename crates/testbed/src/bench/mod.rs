//! The benchmark: OrderFlow (`orderflow serve`, release build) against its own Temporal dev
//! server and a fresh database, driven over HTTP, next to the engine baseline on the same
//! server, in one run. Writes the results as JSON and a latency/throughput plot (SVG).
//!
//! Phases, in order: baseline at saturation; OrderFlow at saturation; one order in flight;
//! an open-loop sweep at fractions of the saturated rate (the plot; the 50% point is "half the
//! maximum rate"); `GET /api/orders/status` reads.

pub mod baseline;
mod driver;
mod plot;
mod stats;

use crate::cluster::{Cluster, ClusterConfig};
use baseline::{BaselineHost, Shape};
use driver::{BaselineTarget, Mode, OrderTarget, Outcome, StatusTarget, Target, drive};
use serde::Serialize;
use stats::{Percentiles, Probe};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct BenchConfig {
    pub orderflow_bin: PathBuf,
    pub temporal_cli: PathBuf,
    pub database_url: String,
    pub temporal_port: u16,
    pub http_port: u16,
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
    pub work_dir: PathBuf,
    pub label: String,
}

#[derive(Debug, Serialize)]
pub struct Phase {
    pub name: String,
    pub mode: String,
    pub seconds: f64,
    pub sent: usize,
    pub completed: usize,
    pub errors: usize,
    /// Completed per second over the phase.
    pub throughput: f64,
    pub latency: Percentiles,
    pub api_response: Percentiles,
    /// CPU seconds per completed unit, by process.
    pub cpu_per_unit: Vec<(String, f64)>,
}

#[derive(Debug, Serialize)]
pub struct BenchReport {
    pub label: String,
    pub machine: String,
    pub baseline_shape: Shape,
    pub phases: Vec<Phase>,
    /// OrderFlow's saturated rate ÷ the baseline's, measured in this run.
    pub ratio_to_baseline: f64,
    /// Where an order's time goes, with one in flight: each step's duration (workflow time,
    /// from the state objects of the last orders of that phase).
    pub steps: Vec<(String, Percentiles)>,
}

pub async fn run(config: BenchConfig) -> anyhow::Result<BenchReport> {
    let products: Vec<(String, String, i32)> =
        (0..20).map(|i| (format!("bench-{i:02}"), format!("{}.99", 10 + i), 10_000_000)).collect();
    let cluster_config = ClusterConfig {
        orderflow_bin: config.orderflow_bin.clone(),
        temporal_cli: config.temporal_cli.clone(),
        database_url: config.database_url.clone(),
        database_name: "orderflow_bench".into(),
        temporal_port: config.temporal_port,
        temporal_args: config.temporal_args.clone(),
        http_port: config.http_port,
        apis: 0,
        workers: 0,
        servers: 1,
        worker_env: config.service_env.clone(),
        task_queue: "bench-orders".into(),
        products: products.clone(),
        work_dir: config.work_dir.clone(),
    };
    let mut cluster = Cluster::start(&cluster_config).await?;
    let result = phases(&config, &cluster, products).await;
    cluster.shutdown().await;
    result
}

async fn phases(
    config: &BenchConfig,
    cluster: &Cluster,
    products: Vec<(String, String, i32)>,
) -> anyhow::Result<BenchReport> {
    let probes = [
        ("orderflow".to_owned(), Probe::Pid(cluster.servers[0].pid().unwrap_or(0))),
        ("temporal".to_owned(), Probe::Pid(cluster.temporal.pid().unwrap_or(0))),
        ("postgres".to_owned(), Probe::Name("postgres".into())),
        ("bench".to_owned(), Probe::Myself),
    ];
    let mut phases = Vec::new();

    let host =
        BaselineHost::start(&cluster.temporal_address, "bench-baseline", config.baseline).await?;
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
    let base =
        measure("baseline, saturated", baseline.clone(), saturated, config.phase, &probes).await;
    drop(baseline);

    let url = cluster.api_urls[0].clone();
    let priced = products.into_iter().map(|(id, price, _)| (id, price)).collect();
    let orders = OrderTarget::new(url.clone(), priced, cluster.store.pool().clone());
    drive(
        orders.clone(),
        Mode::Closed { concurrency: 4 },
        Duration::from_secs(2),
        "orderflow warm-up",
    )
    .await;
    let max =
        measure("orderflow, saturated", orders.clone(), saturated, config.phase, &probes).await;
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
            &probes,
        )
        .await,
    );
    let steps = step_timings(&url, cluster.store.pool()).await?;
    for fraction in &config.sweep {
        let rate = (max_rate * fraction).max(1.0);
        let name = format!("orderflow, open loop at {:.0}% ({rate:.1}/s)", fraction * 100.0);
        phases
            .push(measure(&name, orders.clone(), Mode::Open { rate }, config.phase, &probes).await);
    }

    let workflow_ids: Vec<String> = sqlx::query_scalar("SELECT workflow_id FROM orders LIMIT 5000")
        .fetch_all(cluster.store.pool())
        .await?;
    let status = Arc::new(StatusTarget {
        http: reqwest::Client::builder().pool_max_idle_per_host(1024).build()?,
        url,
        workflow_ids,
        next: AtomicUsize::new(0),
    });
    let reads = Mode::Closed { concurrency: config.status_connections };
    phases.push(measure("GET /api/orders/status", status, reads, config.phase, &probes).await);

    Ok(BenchReport {
        label: config.label.clone(),
        machine: machine(),
        baseline_shape: config.baseline,
        phases,
        ratio_to_baseline: ratio,
        steps,
    })
}

/// Per-step durations of the last 100 orders, from their state objects.
async fn step_timings(
    url: &str,
    pool: &sqlx::PgPool,
) -> anyhow::Result<Vec<(String, Percentiles)>> {
    let ids: Vec<String> =
        sqlx::query_scalar("SELECT workflow_id FROM orders ORDER BY id DESC LIMIT 100")
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
    probes: &[(String, Probe)],
) -> Phase {
    let cpu_before: Vec<f64> = probes.iter().map(|(_, p)| p.cpu_seconds()).collect();
    let started = std::time::Instant::now();
    let Outcome { samples, errors, sent } = drive(target, mode, duration, name).await;
    let seconds = started.elapsed().as_secs_f64();
    let completed = samples.len();
    let cpu_per_unit = probes
        .iter()
        .zip(cpu_before)
        .map(|((name, probe), before)| {
            let used = probe.cpu_seconds() - before;
            (name.clone(), if completed > 0 { used / completed as f64 } else { 0.0 })
        })
        .collect();
    let phase = Phase {
        name: name.to_owned(),
        mode: match mode {
            Mode::Closed { concurrency } => format!("closed loop, {concurrency} in flight"),
            Mode::Open { rate } => format!("open loop, {rate:.1}/s"),
        },
        seconds,
        sent,
        completed,
        errors,
        throughput: completed as f64 / seconds,
        latency: Percentiles::of(&samples.iter().map(|s| s.latency).collect::<Vec<_>>()),
        api_response: Percentiles::of(&samples.iter().map(|s| s.response).collect::<Vec<_>>()),
        cpu_per_unit,
    };
    println!(
        "{name}: {:.1}/s, p50 {:.1} ms, p99 {:.1} ms, errors {}",
        phase.throughput, phase.latency.p50_ms, phase.latency.p99_ms, phase.errors
    );
    phase
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

impl BenchReport {
    /// Writes `<stem>.json` and `<stem>.svg`.
    pub fn save(&self, stem: &std::path::Path) -> anyhow::Result<()> {
        if let Some(dir) = stem.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(stem.with_extension("json"), serde_json::to_vec_pretty(self)?)?;
        plot::latency_vs_throughput(self, &stem.with_extension("svg"))?;
        Ok(())
    }

    pub fn phase(&self, prefix: &str) -> Option<&Phase> {
        self.phases.iter().find(|p| p.name.starts_with(prefix))
    }
}

impl std::fmt::Display for BenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "benchmark: {} — {}", self.label, self.machine)?;
        writeln!(
            f,
            "{:<44} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7}  cpu ms/unit (orderflow/temporal/postgres/bench)",
            "phase", "done/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "errors"
        )?;
        for p in &self.phases {
            let cpu: Vec<String> =
                p.cpu_per_unit.iter().map(|(_, s)| format!("{:.1}", s * 1000.0)).collect();
            writeln!(
                f,
                "{:<44} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>7}  {}",
                p.name,
                p.throughput,
                p.latency.p50_ms,
                p.latency.p90_ms,
                p.latency.p99_ms,
                p.latency.max_ms,
                p.errors,
                cpu.join(" / ")
            )?;
        }
        writeln!(f, "steps with one order in flight (p50 / p99 ms):")?;
        for (step, p) in &self.steps {
            writeln!(f, "  {step:<18} {:>7.1} {:>7.1}", p.p50_ms, p.p99_ms)?;
        }
        write!(f, "orderflow orders/s ÷ baseline workflows/s = {:.2}", self.ratio_to_baseline)
    }
}
