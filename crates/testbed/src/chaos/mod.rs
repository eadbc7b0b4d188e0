//! The chaos suite: OrderFlow as a cluster (several API and worker processes, one Temporal dev
//! server, one PostgreSQL database) under a seeded storm of orders and faults, then a check of
//! every invariant an order system must keep. `orderflow-chaos --help` for the options; a
//! small run is part of `make test`, a big one is `make chaos`.

pub mod check;
pub mod faults;
mod load;

pub use faults::{Fault, FaultPlan, FaultRecord};

use crate::cluster::{Cluster, ClusterConfig, ProviderConfig};
use anyhow::Context;
use load::Load;
pub use load::{Kind, OrderAttempt};
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use temporalio_client::Client;

#[derive(Debug, Clone)]
pub struct ChaosConfig {
    pub orderflow_bin: PathBuf,
    pub temporal_cli: PathBuf,
    /// The PostgreSQL server; the run creates its own database on it.
    pub database_url: String,
    pub seed: u64,
    pub orders: usize,
    pub concurrency: usize,
    pub apis: usize,
    pub workers: usize,
    pub faults: FaultPlan,
    /// The dev server's port. `None`: a free one, picked at start.
    pub temporal_port: Option<u16>,
    /// The first API listens here, the next on the port after, ... `None`: a free range,
    /// picked at start.
    pub http_port: Option<u16>,
    pub work_dir: PathBuf,
    pub quiescence_timeout: Duration,
    /// How many finished workflows to replay against the workflow code.
    pub replay_sample: usize,
}

pub struct Report {
    pub seed: u64,
    pub orders: usize,
    pub acknowledged: usize,
    pub requests: usize,
    /// Requests made on another customer's order (each must be a 404).
    pub snoops: usize,
    pub by_kind: BTreeMap<String, usize>,
    pub cancels: BTreeMap<String, usize>,
    pub outcomes: BTreeMap<String, usize>,
    pub faults: Vec<FaultRecord>,
    pub load_duration: Duration,
    pub time_to_quiescence: Duration,
    pub checks: usize,
    pub replayed: usize,
    pub violations: Vec<String>,
    pub work_dir: PathBuf,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }
}

/// The chaos catalog: plenty of most things, very little of a few, and one product so expensive
/// that two of them are declined by the payment provider.
const PLENTIFUL: [(&str, &str); 6] = [
    ("chaos-a", "12.50"),
    ("chaos-b", "49.99"),
    ("chaos-c", "99.00"),
    ("chaos-d", "250.00"),
    ("chaos-e", "19.95"),
    ("chaos-f", "5.00"),
];
const SCARCE: [(&str, &str, i32); 3] = [
    ("chaos-scarce-1", "30.00", 15),
    ("chaos-scarce-2", "30.00", 10),
    ("chaos-scarce-3", "30.00", 5),
];
const LUXURY: (&str, &str) = ("chaos-luxury", "6000.00");

impl ChaosConfig {
    /// The run's HS256 secret, which the load generator signs its customers' tokens with.
    fn jwt_secret(&self) -> String {
        format!("chaos-run-{:020}-hs256-secret", self.seed)
    }

    fn cluster(&self) -> ClusterConfig {
        let mut products: Vec<(String, String, i32)> = PLENTIFUL
            .iter()
            .map(|(id, price)| (id.to_string(), price.to_string(), 100_000))
            .collect();
        products
            .extend(SCARCE.iter().map(|(id, price, n)| (id.to_string(), price.to_string(), *n)));
        products.push((LUXURY.0.into(), LUXURY.1.into(), 100_000));
        let env = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        ClusterConfig {
            orderflow_bin: self.orderflow_bin.clone(),
            temporal_cli: self.temporal_cli.clone(),
            database_url: self.database_url.clone(),
            // Of this run alone: the test suite's chaos run and `make chaos` may share a seed.
            database_name: format!("orderflow_chaos_{}_{}", self.seed, std::process::id()),
            temporal_port: self.temporal_port,
            temporal_metrics: false,
            // The same SQLite settings as `make dev` (see scripts/bootstrap.sh).
            temporal_args: [
                "--sqlite-pragma",
                "journal_mode=WAL",
                "--sqlite-pragma",
                "synchronous=NORMAL",
            ]
            .map(String::from)
            .to_vec(),
            http_port: self.http_port,
            apis: self.apis,
            workers: self.workers,
            servers: 0,
            // Production's identity mode: 97 customers with tokens of their own (load.rs).
            // Payments wait at most 3 s for the customer, so that some answers come late.
            env: vec![
                env("AUTH_MODE", "jwt"),
                env("JWT_HS256_SECRET", &self.jwt_secret()),
                env("PAYMENT_CONFIRMATION_TIMEOUT_MS", "3000"),
            ],
            // A little latency and a few failures widen the windows faults land in.
            worker_env: vec![
                env("INVENTORY_DELAY_MS", "5"),
                env("NOTIFICATION_FAILURE_RATE", "0.05"),
            ],
            task_queue: format!("chaos-{}", self.seed),
            products,
            work_dir: self.work_dir.clone(),
            // The provider over HTTP: a third of the payments need the customer, who answers
            // after 2.8 s (close to the 3 s timeout: faults push some answers past it); a
            // third of the webhooks come twice; 5% of its calls fail.
            provider: Some(ProviderConfig {
                env: vec![
                    env("PSP_ACTION_REQUIRED_RATE", "0.33"),
                    env("PSP_CONFIRM_DELAY_MS", "2800"),
                    env("PSP_WEBHOOK_DUPLICATE_RATE", "0.33"),
                    env("PSP_OUTAGE_RATE", "0.05"),
                ],
                webhook_secret: format!("whsec_chaos_run_{:020}_signing_secret", self.seed),
            }),
            // Versioned as in production, so that the rolling-deploy fault can release builds.
            worker_deployment: Some(format!("orderflow-chaos-{}", self.seed)),
        }
    }
}

/// Runs the whole thing: start the cluster, load + faults, heal, wait for quiescence, check.
pub async fn run(config: ChaosConfig) -> anyhow::Result<Report> {
    println!(
        "chaos: seed {} — {} orders, {} API + {} worker processes",
        config.seed, config.orders, config.apis, config.workers
    );
    let mut cluster = Cluster::start(&config.cluster()).await.context("starting the cluster")?;
    let result = storm_and_check(&config, &mut cluster).await;
    cluster.shutdown().await;
    result
}

async fn storm_and_check(config: &ChaosConfig, cluster: &mut Cluster) -> anyhow::Result<Report> {
    let started = Instant::now();
    let progress = Arc::new(AtomicUsize::new(0));
    let load = Load {
        api_urls: cluster.api_urls.clone(),
        orders: config.orders,
        concurrency: config.concurrency,
        seed: config.seed,
        jwt_secret: config.jwt_secret(),
    };
    let load = tokio::spawn(load.run(progress.clone()));
    let reporter = tokio::spawn(report_progress(progress.clone(), config.orders, started));
    let faults = faults::inject(cluster, &config.faults, config.seed, started).await;
    let attempts = load.await.context("the load generator")?;
    reporter.abort();
    let load_duration = started.elapsed();
    println!(
        "chaos: load and faults done after {:.1}s; healing and waiting for quiescence",
        load_duration.as_secs_f64()
    );

    cluster.heal().await?;
    let temporal = cluster.temporal_client().await?.clone();
    let quiet_since = Instant::now();
    wait_for_quiescence(cluster, &temporal, &attempts, config.quiescence_timeout).await;
    let time_to_quiescence = quiet_since.elapsed();

    let findings = check::gather(cluster, &temporal, &attempts, config.replay_sample).await?;
    let mut violations: Vec<String> = findings.violations.iter().map(|v| v.to_string()).collect();
    violations.extend(faults.iter().filter_map(|f| f.violation.clone()));
    let mut by_kind = BTreeMap::new();
    let mut cancels = BTreeMap::new();
    let snoops = attempts.iter().map(|a| a.snooped.len()).sum();
    for attempt in &attempts {
        *by_kind.entry(format!("{:?}", attempt.kind).to_lowercase()).or_default() += 1;
        if let Some(code) = attempt.cancel {
            *cancels.entry(code.to_string()).or_default() += 1;
        }
    }
    Ok(Report {
        seed: config.seed,
        orders: attempts.len(),
        acknowledged: attempts.iter().filter(|a| a.workflow_id().is_some()).count(),
        requests: attempts.iter().map(|a| a.requests).sum(),
        snoops,
        by_kind,
        cancels,
        outcomes: findings.outcomes,
        faults,
        load_duration,
        time_to_quiescence,
        checks: findings.checks,
        replayed: findings.replayed,
        violations,
        work_dir: config.work_dir.clone(),
    })
}

async fn report_progress(progress: Arc<AtomicUsize>, total: usize, started: Instant) {
    loop {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let done = progress.load(Ordering::Relaxed);
        println!("  [{:>6.1}s] {done}/{total} customers done", started.elapsed().as_secs_f64());
        if done == total {
            return;
        }
    }
}

/// Quiet: no workflow of the run is open and every acknowledged order has ended.
async fn wait_for_quiescence(
    cluster: &Cluster,
    temporal: &Client,
    attempts: &[OrderAttempt],
    timeout: Duration,
) {
    let acknowledged: Vec<String> =
        attempts.iter().filter_map(OrderAttempt::workflow_id).map(str::to_owned).collect();
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        let running = temporal
            .count_workflows(
                format!("TaskQueue = '{}' AND ExecutionStatus = 'Running'", cluster.task_queue),
                Default::default(),
            )
            .await
            .map(|c| c.count())
            .unwrap_or(usize::MAX);
        let unfinished = sqlx::query_scalar!(
            r#"SELECT count(*) AS "unfinished!" FROM orders WHERE workflow_id = ANY($1)
                 AND status NOT IN ('completed', 'failed', 'cancelled')"#,
            &acknowledged
        )
        .fetch_one(cluster.store.pool())
        .await
        .unwrap_or(i64::MAX);
        if running == 0 && unfinished == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    println!("chaos: not quiet after {timeout:?}; checking anyway");
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "==================== chaos report ====================")?;
        writeln!(f, "seed                 {}", self.seed)?;
        writeln!(
            f,
            "orders               {} placed ({:?}), {} HTTP requests",
            self.orders, self.by_kind, self.requests
        )?;
        writeln!(f, "acknowledged (2xx)   {}", self.acknowledged)?;
        writeln!(
            f,
            "customers            97 with tokens (AUTH_MODE=jwt); {} requests on another's order",
            self.snoops
        )?;
        writeln!(f, "outcomes in the DB   {:?}", self.outcomes)?;
        writeln!(f, "cancel answers       {:?}", self.cancels)?;
        let mut by_fault: BTreeMap<String, usize> = BTreeMap::new();
        for record in &self.faults {
            *by_fault.entry(record.fault.to_string()).or_default() += 1;
        }
        writeln!(f, "faults injected      {} {:?}", self.faults.len(), by_fault)?;
        writeln!(f, "load + faults        {:.1}s", self.load_duration.as_secs_f64())?;
        writeln!(f, "time to quiescence   {:.1}s", self.time_to_quiescence.as_secs_f64())?;
        writeln!(f, "histories replayed   {}", self.replayed)?;
        writeln!(f, "invariants checked   {}", self.checks)?;
        writeln!(f, "violations           {}", self.violations.len())?;
        for violation in &self.violations {
            writeln!(f, "  ✗ {violation}")?;
        }
        writeln!(f, "logs                 {}", self.work_dir.join("logs").display())?;
        write!(f, "result               {}", if self.passed() { "PASS" } else { "FAIL" })
    }
}
