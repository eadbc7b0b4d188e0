//! The Temporal worker: how much it takes on, its release, and the simulated providers of
//! development.

use super::parse;
use clap::Args;
use orderflow_domain::Money;
use std::time::Duration;
use temporalio_common::worker::WorkerDeploymentVersion;

/// How much one worker process takes on at once, and which release it is.
#[derive(Debug, Clone, Args)]
pub struct WorkerConfig {
    /// Workflow tasks processed at once. Generous, because an order started while every slot is
    /// taken cannot be started eagerly: its first task goes through the task queue, where such
    /// tasks waited up to 20 s at saturation with 100 slots (docs/performance.md). A slot costs
    /// little: an order's task is a few milliseconds of steps.
    #[arg(long, env = "WORKER_WORKFLOW_SLOTS", value_name = "WORKER_WORKFLOW_SLOTS", default_value_t = 1000, value_parser = clap::value_parser!(u16).range(2..))]
    pub workflow_slots: u16,
    /// Activities (steps) run at once. Each holds a database connection while it runs, so
    /// more slots than DATABASE_MAX_CONNECTIONS only queue on the pool.
    #[arg(long, env = "WORKER_ACTIVITY_SLOTS", value_name = "WORKER_ACTIVITY_SLOTS", default_value_t = 100, value_parser = clap::value_parser!(u16).range(1..))]
    pub activity_slots: u16,
    /// Workflows kept in memory between their tasks (the sticky cache).
    #[arg(
        long,
        env = "WORKER_MAX_CACHED_WORKFLOWS",
        value_name = "WORKER_MAX_CACHED_WORKFLOWS",
        default_value_t = 1000
    )]
    pub max_cached_workflows: usize,
    /// A step that has failed this many times in a row is flagged as stuck (logged once at
    /// error level, counted in orderflow_steps_stuck, listed for the operators). The default
    /// is about 25 s of failing: longer than a database restart.
    #[arg(long, env = "STUCK_AFTER_ATTEMPTS", value_name = "STUCK_AFTER_ATTEMPTS", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
    pub stuck_after_attempts: u32,
    /// A worker is replaced by a fresh one after this many steps: the Temporal SDK keeps ~200
    /// bytes per step a worker has run until the worker is dropped (docs/operations.md, "Overload").
    #[arg(long, env = "WORKER_RECYCLE_AFTER_STEPS", value_name = "WORKER_RECYCLE_AFTER_STEPS", default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub recycle_after_steps: u64,
    /// Worker Versioning (docs/operations.md, "Releasing a new version"): the worker deployment
    /// this worker belongs to. With `TEMPORAL_WORKER_BUILD_ID`, every order is pinned to the
    /// build that started it and runs on that build's workers to its end; new orders go to the
    /// deployment's current version, set when a release is promoted. Unset: an unversioned
    /// worker, as in development.
    #[arg(long, env = "TEMPORAL_WORKER_DEPLOYMENT_NAME", value_name = "TEMPORAL_WORKER_DEPLOYMENT_NAME", requires = "build_id", value_parser = parse::version_part)]
    pub deployment_name: Option<String>,
    /// This release's build id (e.g. the image tag or git commit), with
    /// `TEMPORAL_WORKER_DEPLOYMENT_NAME`.
    #[arg(long, env = "TEMPORAL_WORKER_BUILD_ID", value_name = "TEMPORAL_WORKER_BUILD_ID", requires = "deployment_name", value_parser = parse::version_part)]
    pub build_id: Option<String>,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        super::defaults()
    }
}

impl WorkerConfig {
    /// The worker deployment version this worker runs, when versioning is configured.
    pub fn deployment_version(&self) -> Option<WorkerDeploymentVersion> {
        let (name, build) = (self.deployment_name.as_ref()?, self.build_id.as_ref()?);
        Some(
            WorkerDeploymentVersion::builder()
                .deployment_name(name.clone())
                .build_id(build.clone())
                .build(),
        )
    }
}

/// Which payments the simulated providers decline, `orderflow psp` and the in-process one alike.
#[derive(Debug, Clone, Args)]
pub struct DeclineRule {
    /// Payments above this amount are declined by the simulated payment provider (in process,
    /// without PAYMENT_PROVIDER_URL, and `orderflow psp`).
    #[arg(
        long = "payment-decline-above",
        env = "PAYMENT_DECLINE_ABOVE",
        value_name = "PAYMENT_DECLINE_ABOVE",
        default_value = "10000.00",
        value_parser = parse::money
    )]
    pub above: Money,
}

/// Knobs of the in-process simulated payment provider, inventory and notifier. All
/// deterministic.
#[derive(Debug, Clone, Args)]
pub struct SimulationConfig {
    #[command(flatten)]
    pub decline: DeclineRule,
    /// Simulated latency of the in-process payment provider, 0–5000 ms.
    #[arg(long, env = "PAYMENT_DELAY_MS", value_name = "PAYMENT_DELAY_MS", default_value = "0", value_parser = parse::delay)]
    pub payment_delay: Duration,
    /// Simulated time the stock check takes (to watch an order move), 0–5000 ms.
    #[arg(long, env = "INVENTORY_DELAY_MS", value_name = "INVENTORY_DELAY_MS", default_value = "0", value_parser = parse::delay)]
    pub inventory_delay: Duration,
    /// Simulated latency of the customer notifier, 0–5000 ms.
    #[arg(
        long,
        env = "NOTIFICATION_DELAY_MS",
        value_name = "NOTIFICATION_DELAY_MS",
        default_value = "0",
        value_parser = parse::delay
    )]
    pub notification_delay: Duration,
    /// Share (0..1) of payment calls that fail transiently and are retried.
    #[arg(
        long,
        env = "PAYMENT_TRANSIENT_FAILURE_RATE",
        value_name = "PAYMENT_TRANSIENT_FAILURE_RATE",
        default_value_t = 0.0,
        value_parser = parse::rate
    )]
    pub payment_transient_failure_rate: f64,
    /// Share (0..1) of notification attempts that fail.
    #[arg(
        long,
        env = "NOTIFICATION_FAILURE_RATE",
        value_name = "NOTIFICATION_FAILURE_RATE",
        default_value_t = 0.0,
        value_parser = parse::rate
    )]
    pub notification_failure_rate: f64,
}

impl Default for SimulationConfig {
    fn default() -> Self {
        super::defaults()
    }
}

/// How a process stops.
#[derive(Debug, Clone, Args)]
pub struct ShutdownConfig {
    /// On SIGTERM or Ctrl-C: stop taking work, let what is in flight finish for at most this
    /// long, then exit (what was cut off is retried by another worker). Keep it below
    /// Kubernetes' terminationGracePeriodSeconds (default 30 s), e.g. 25000 there.
    #[arg(long, env = "SHUTDOWN_GRACE_MS", value_name = "SHUTDOWN_GRACE_MS", default_value = "30000", value_parser = parse::millis(0, 3_600_000))]
    pub grace: Duration,
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        super::defaults()
    }
}

/// The process's own metrics listener.
#[derive(Debug, Clone, Default, Args)]
pub struct MetricsConfig {
    /// Serve /metrics (Prometheus, no authentication) and /live on this port, for a scraper
    /// and probes on an internal network: a worker has no other listener, and with
    /// AUTH_MODE=jwt the API's own /metrics is for operators only.
    #[arg(long, env = "METRICS_PORT", value_name = "METRICS_PORT")]
    pub metrics_port: Option<u16>,
}
