//! OrderFlow as a small cluster on loopback: its own Temporal dev server (persistent state, so
//! it can be killed and restarted), a fresh PostgreSQL database, and `orderflow api`, `orderflow
//! worker` and `orderflow serve` processes, each of which can be killed, paused and restarted.

mod deploy;

use crate::release::Release;
use anyhow::{Context, bail};
use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;
use orderflow_store::{NewProduct, Store};
use rust_decimal::Decimal;
use sqlx::postgres::PgConnectOptions;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::str::FromStr;
use std::time::Duration;
use temporalio_client::{Client, ClientOptions, Connection, ConnectionOptions, Url};
use tokio::process::{Child, Command};
use tokio::sync::OnceCell;

/// A child process that can be (re)started, killed, paused and resumed.
pub struct Process {
    pub name: String,
    program: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    log: PathBuf,
    child: Option<Child>,
    paused: bool,
}

impl Process {
    pub(crate) fn new(
        name: &str,
        program: &Path,
        args: &[&str],
        env: Vec<(String, String)>,
        logs: &Path,
    ) -> Self {
        Self {
            name: name.to_owned(),
            program: program.to_owned(),
            args: args.iter().map(|a| a.to_string()).collect(),
            env,
            log: logs.join(format!("{name}.log")),
            child: None,
            paused: false,
        }
    }

    pub fn start(&mut self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log)?;
        let child = Command::new(&self.program)
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {} ({})", self.name, self.program.display()))?;
        self.child = Some(child);
        self.paused = false;
        Ok(())
    }

    /// Sets `key` in the environment the process is started with next; `None` removes it.
    pub fn set_env(&mut self, key: &str, value: Option<&str>) {
        self.env.retain(|(k, _)| k != key);
        if let Some(value) = value {
            self.env.push((key.to_owned(), value.to_owned()));
        }
    }

    pub fn pid(&self) -> Option<i32> {
        self.child.as_ref().and_then(|c| c.id()).map(|id| id as i32)
    }

    /// Sends `signal` to the running child, if any. Best effort, like the faults it serves: a
    /// child that has just exited cannot be signalled, and that is fine.
    fn signal(&self, signal: Signal) {
        if let Some(pid) = self.pid() {
            let _ = signal::kill(Pid::from_raw(pid), signal);
        }
    }

    /// SIGKILL: a crash, with no chance to clean up.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            self.signal_child(&child, Signal::SIGCONT);
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
        self.paused = false;
    }

    /// SIGTERM, then SIGKILL if it has not exited after `grace`.
    pub async fn stop(&mut self, grace: Duration) {
        if let Some(mut child) = self.child.take() {
            self.signal_child(&child, Signal::SIGCONT);
            self.signal_child(&child, Signal::SIGTERM);
            if tokio::time::timeout(grace, child.wait()).await.is_err() {
                let _ = child.start_kill();
                let _ = child.wait().await;
            }
        }
    }

    fn signal_child(&self, child: &Child, signal: Signal) {
        if let Some(pid) = child.id() {
            let _ = signal::kill(Pid::from_raw(pid as i32), signal);
        }
    }

    /// SIGSTOP: the process freezes mid-whatever, holding its connections and leases.
    pub fn pause(&mut self) {
        self.signal(Signal::SIGSTOP);
        self.paused = true;
    }

    pub fn resume(&mut self) {
        self.signal(Signal::SIGCONT);
        self.paused = false;
    }

    /// Whether the process is alive (it may be paused).
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// A new process like this one (not started), named `name`, with `key` set to `value`.
    pub(crate) fn successor(&self, name: &str, key: &str, value: &str) -> Self {
        let logs = self.log.parent().unwrap_or(Path::new("."));
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        let mut next = Self::new(name, &self.program, &args, self.env.clone(), logs);
        next.set_env(key, Some(value));
        next
    }
}

/// What the chaos suite and the benchmark need from their command line alike.
#[derive(Debug, Clone, clap::Args)]
pub struct Tools {
    /// PostgreSQL server to create the run's database on.
    #[arg(long, env = "DATABASE_URL", default_value = crate::DEFAULT_DATABASE_URL)]
    pub database_url: String,
    /// The `orderflow` binary. Default: next to this program (the same build).
    #[arg(long)]
    pub orderflow_bin: Option<PathBuf>,
    /// The Temporal CLI, to run a dev server of the run's own.
    #[arg(long, env = "TEMPORAL_CLI", default_value = crate::DEFAULT_TEMPORAL_CLI)]
    pub temporal_cli: PathBuf,
}

impl Tools {
    pub fn orderflow_bin(&self) -> anyhow::Result<PathBuf> {
        match &self.orderflow_bin {
            Some(path) => Ok(path.clone()),
            None => Ok(std::env::current_exe()?.with_file_name("orderflow")),
        }
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    pub orderflow_bin: PathBuf,
    pub temporal_cli: PathBuf,
    /// The PostgreSQL server; the cluster gets a fresh database `database_name` on it.
    pub database_url: String,
    pub database_name: String,
    /// The dev server's gRPC port. `None`: a free one, picked at start.
    pub temporal_port: Option<u16>,
    /// Serve the dev server's Prometheus metrics on a free port ([`Cluster::temporal_metrics`]).
    pub temporal_metrics: bool,
    /// Extra arguments of `temporal server start-dev`, e.g. SQLite pragmas.
    pub temporal_args: Vec<String>,
    /// The first HTTP process listens here, the next on the port after, ... `None`: a free
    /// range, picked at start.
    pub http_port: Option<u16>,
    pub apis: usize,
    pub workers: usize,
    /// `orderflow serve` processes (API and worker in one).
    pub servers: usize,
    /// Extra environment of every OrderFlow process.
    pub env: Vec<(String, String)>,
    /// Extra environment of the processes that run a worker.
    pub worker_env: Vec<(String, String)>,
    pub task_queue: String,
    /// (id, price, units in stock)
    pub products: Vec<(String, String, i32)>,
    pub work_dir: PathBuf,
    /// Run the simulated payment provider (`orderflow psp`) beside the service and take
    /// payments through it; `None`: the workers' in-process simulation.
    pub provider: Option<ProviderConfig>,
    /// Version the workers (Worker Versioning) in a worker deployment of this name, starting
    /// at `build-1`, promoted at start; `None`: unversioned workers.
    pub worker_deployment: Option<String>,
}

/// The simulated payment provider of a cluster.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    /// Its knobs (`PSP_*`, `PAYMENT_DECLINE_ABOVE`).
    pub env: Vec<(String, String)>,
    /// Shared with the service: the provider signs its webhooks with it.
    pub webhook_secret: String,
}

pub struct Cluster {
    pub temporal: Process,
    pub temporal_address: String,
    /// `http://127.0.0.1:<port>/metrics` when the config asked for metrics.
    pub temporal_metrics: Option<String>,
    temporal_cli: PathBuf,
    pub apis: Vec<Process>,
    pub workers: Vec<Process>,
    pub servers: Vec<Process>,
    /// Every process that serves HTTP (APIs, then servers).
    pub api_urls: Vec<String>,
    pub store: Store,
    pub database: PgConnectOptions,
    pub database_name: String,
    pub task_queue: String,
    /// Units each product started with: available + reserved + sold must stay equal to it.
    pub initial_stock: BTreeMap<String, i32>,
    /// The payment provider's process and root URL, when the config asked for one.
    pub provider: Option<Process>,
    pub provider_url: Option<String>,
    /// The secret the provider signs its webhooks with.
    pub webhook_secret: Option<String>,
    provider_database: Option<String>,
    /// The workers' deployment and current build, when versioned (see `deploy.rs`).
    pub release: Option<Release>,
    /// A client of the dev server, connected on first use.
    temporal_client: OnceCell<Client>,
    /// Processes a release replaced: stopped, kept for their logs.
    pub(crate) retired: Vec<Process>,
}

impl Cluster {
    /// Starts the whole cluster and waits until it serves: a fresh database, the dev server,
    /// then the OrderFlow processes.
    pub async fn start(config: &ClusterConfig) -> anyhow::Result<Self> {
        let logs = config.work_dir.join("logs");
        std::fs::create_dir_all(&logs)?;
        let database = FreshDatabase::create(config).await?;
        let temporal = DevServer::start(config, &logs)?;
        let mut common = common_env(config, &database.url, temporal.port);
        let provider_port = match &config.provider {
            Some(provider) => {
                let port = crate::free_ports(1)?;
                common.extend([
                    ("PAYMENT_PROVIDER_URL".to_owned(), format!("http://127.0.0.1:{port}")),
                    ("PAYMENT_WEBHOOK_SECRET".to_owned(), provider.webhook_secret.clone()),
                ]);
                Some(port)
            }
            None => None,
        };
        let mut cluster = Self {
            temporal: temporal.process,
            temporal_address: format!("127.0.0.1:{}", temporal.port),
            temporal_metrics: temporal
                .metrics_port
                .map(|p| format!("http://127.0.0.1:{p}/metrics")),
            temporal_cli: config.temporal_cli.clone(),
            apis: Vec::new(),
            workers: Vec::new(),
            servers: Vec::new(),
            api_urls: Vec::new(),
            store: database.store,
            database: database.options,
            database_name: config.database_name.clone(),
            task_queue: config.task_queue.clone(),
            initial_stock: database.initial_stock,
            provider: None,
            provider_url: provider_port.map(|port| format!("http://127.0.0.1:{port}")),
            webhook_secret: config.provider.as_ref().map(|p| p.webhook_secret.clone()),
            provider_database: None,
            release: config.worker_deployment.clone().map(Release::first),
            temporal_client: OnceCell::new(),
            retired: Vec::new(),
        };
        cluster.wait_for_temporal().await?;
        cluster.start_orderflow(config, &logs, &common)?;
        if let Some(release) = &cluster.release {
            cluster.promote(release.build).await?;
        }
        if let (Some(provider), Some(port)) = (&config.provider, provider_port) {
            // A ledger left by an earlier run would hold payments of orders this run lacks.
            let ledger = format!("{}_psp", config.database_name);
            orderflow_store::drop_database(&cluster.database, &ledger).await?;
            cluster.start_provider(config, provider, port, &database.url, &logs)?;
        }
        cluster.wait_for_apis().await?;
        Ok(cluster)
    }

    /// Starts `orderflow psp` on `port`, with a ledger database of its own beside the
    /// service's, sending its webhooks to the first API (as to a load balancer: while that
    /// process is down, the provider retries).
    fn start_provider(
        &mut self,
        config: &ClusterConfig,
        provider: &ProviderConfig,
        port: u16,
        database_url: &url::Url,
        logs: &Path,
    ) -> anyhow::Result<()> {
        let name = format!("{}_psp", config.database_name);
        let mut ledger_url = database_url.clone();
        ledger_url.set_path(&name);
        let webhook_url = format!("{}/api/webhooks/payments", self.api_urls[0]);
        let mut env = vec![
            ("PSP_HOST".to_owned(), "127.0.0.1".to_owned()),
            ("PSP_PORT".to_owned(), port.to_string()),
            ("PSP_DATABASE_URL".to_owned(), ledger_url.to_string()),
            ("PSP_WEBHOOK_URL".to_owned(), webhook_url),
            ("PAYMENT_WEBHOOK_SECRET".to_owned(), provider.webhook_secret.clone()),
            ("RUST_LOG".to_owned(), "info".to_owned()),
        ];
        env.extend(provider.env.iter().cloned());
        let mut process = Process::new("psp", &config.orderflow_bin, &["psp"], env, logs);
        process.start()?;
        self.provider = Some(process);
        self.provider_database = Some(name);
        Ok(())
    }

    /// Starts the `orderflow` processes: the APIs, then the servers, then the workers. Each
    /// process that serves HTTP gets the port after the previous one's, from `http_port` on, or
    /// from a free range picked here: after the dev server is up, so that the range cannot be
    /// one of its ports.
    fn start_orderflow(
        &mut self,
        config: &ClusterConfig,
        logs: &Path,
        common: &[(String, String)],
    ) -> anyhow::Result<()> {
        let mut http_port = match config.http_port {
            Some(port) => port,
            None => crate::free_ports(config.apis + config.servers)?,
        };
        let roles = [("api", config.apis), ("serve", config.servers), ("worker", config.workers)];
        for (role, count) in roles {
            for i in 0..count {
                let mut env = common.to_vec();
                env.extend(config.env.iter().cloned());
                if role != "api" {
                    env.extend(config.worker_env.iter().cloned());
                    if let Some(release) = &self.release {
                        env.extend(release.worker_env());
                    }
                }
                if role != "worker" {
                    env.push(("HTTP_HOST".into(), "127.0.0.1".into()));
                    env.push(("HTTP_PORT".into(), http_port.to_string()));
                    self.api_urls.push(format!("http://127.0.0.1:{http_port}"));
                    http_port += 1;
                }
                let name = format!("{role}-{i}");
                let mut process = Process::new(&name, &config.orderflow_bin, &[role], env, logs);
                process.start()?;
                match role {
                    "api" => self.apis.push(process),
                    "serve" => self.servers.push(process),
                    _ => self.workers.push(process),
                }
            }
        }
        Ok(())
    }

    /// Waits until the dev server serves the default namespace.
    pub async fn wait_for_temporal(&self) -> anyhow::Result<()> {
        for _ in 0..300 {
            let ready = Command::new(&self.temporal_cli)
                .args([
                    "operator",
                    "namespace",
                    "describe",
                    "default",
                    "--address",
                    &self.temporal_address,
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .await
                .is_ok_and(|s| s.success());
            if ready {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        bail!(
            "the Temporal dev server did not become ready; see {}",
            self.temporal.log_path().display()
        )
    }

    pub async fn wait_for_apis(&self) -> anyhow::Result<()> {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(2)).build()?;
        for url in &self.api_urls {
            let mut ready = false;
            for _ in 0..600 {
                if http
                    .get(format!("{url}/health"))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success())
                {
                    ready = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            if !ready {
                bail!("{url} did not become healthy");
            }
        }
        Ok(())
    }

    /// After the faults: every process running again and none paused.
    pub async fn heal(&mut self) -> anyhow::Result<()> {
        if !self.temporal.is_running() {
            self.temporal.start()?;
        }
        self.wait_for_temporal().await?;
        for process in self.processes_mut() {
            if process.paused {
                process.resume();
            }
            if !process.is_running() {
                process.start()?;
            }
        }
        self.wait_for_apis().await
    }

    /// Workflow tasks the dev server has timed out so far (needs `temporal_metrics`). A task
    /// times out when its worker does not complete it within the workflow task timeout; the
    /// server then schedules it again, so each one is work done twice.
    pub async fn workflow_task_timeouts(&self) -> anyhow::Result<u64> {
        let url = self.temporal_metrics.as_deref().context("the cluster has no metrics port")?;
        let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?;
        let metrics = http.get(url).send().await?.error_for_status()?.text().await?;
        Ok(count_workflow_task_timeouts(&metrics))
    }

    /// Workflows still running, from the server's visibility store.
    pub async fn running_workflows(&self) -> anyhow::Result<u64> {
        self.count_workflows("ExecutionStatus=\"Running\"").await
    }

    /// Workflows matching a visibility `query`.
    pub(crate) async fn count_workflows(&self, query: &str) -> anyhow::Result<u64> {
        crate::release::count_workflows(self.temporal_client().await?, query).await
    }

    /// A client of the cluster's dev server (default namespace).
    pub async fn temporal_client(&self) -> anyhow::Result<&Client> {
        self.temporal_client
            .get_or_try_init(|| async {
                let url = Url::parse(&format!("http://{}", self.temporal_address))?;
                let connection = Connection::connect(ConnectionOptions::new(url).build()).await?;
                Ok(Client::new(connection, ClientOptions::new("default").build())?)
            })
            .await
    }

    /// Waits (at most `bound`) until no workflow runs: from then on, no workflow task can time
    /// out. Returns how many still ran when it gave up (0 when none).
    pub async fn wait_until_no_workflow_runs(&self, bound: Duration) -> anyhow::Result<u64> {
        let deadline = std::time::Instant::now() + bound;
        loop {
            let running = self.running_workflows().await?;
            if running == 0 || std::time::Instant::now() >= deadline {
                return Ok(running);
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Stops every process and drops the run's database (its figures are reported by now).
    pub async fn shutdown(&mut self) {
        for process in self.processes_mut() {
            process.stop(Duration::from_secs(10)).await;
        }
        self.temporal.stop(Duration::from_secs(10)).await;
        self.store.pool().close().await;
        let databases = std::iter::once(&self.database_name).chain(&self.provider_database);
        for name in databases {
            if let Err(e) = orderflow_store::drop_database(&self.database, name).await {
                println!("could not drop the database {name}: {e}");
            }
        }
    }

    /// Every process but the dev server: OrderFlow's, and the payment provider.
    fn processes_mut(&mut self) -> impl Iterator<Item = &mut Process> {
        self.apis
            .iter_mut()
            .chain(self.servers.iter_mut())
            .chain(self.workers.iter_mut())
            .chain(self.provider.iter_mut())
    }

    /// The logs of every process that runs or ran a worker.
    pub fn worker_logs(&self) -> Vec<PathBuf> {
        let workers = self.workers.iter().chain(&self.servers).chain(&self.retired);
        workers.map(|w| w.log_path().to_owned()).collect()
    }
}

/// The sum of the dev server's `start_to_close_timeout` counters for workflow tasks (one line
/// per value of the `first_attempt` label), from its Prometheus text. No line: none so far.
pub fn count_workflow_task_timeouts(metrics: &str) -> u64 {
    metrics
        .lines()
        .filter(|l| {
            l.starts_with("start_to_close_timeout{")
                && l.contains("operation=\"TimerActiveTaskWorkflowTaskTimeout\"")
        })
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// The run's own database, created afresh (dropped first if a previous run left it), migrated,
/// and stocked with the configured products.
struct FreshDatabase {
    options: PgConnectOptions,
    store: Store,
    /// Units each product started with.
    initial_stock: BTreeMap<String, i32>,
    /// Its URL, for the OrderFlow processes.
    url: url::Url,
}

impl FreshDatabase {
    async fn create(config: &ClusterConfig) -> anyhow::Result<Self> {
        let server = PgConnectOptions::from_str(&config.database_url).context("DATABASE_URL")?;
        orderflow_store::drop_database(&server, &config.database_name).await?;
        let options = server.clone().database(&config.database_name);
        orderflow_store::create_database_if_missing(&options).await?;
        let store = Store::connect_lazy(options.clone(), 4);
        store.migrate().await?;
        let initial_stock = load_catalog(&store, &config.products).await?;
        let mut url = url::Url::parse(&config.database_url).context("DATABASE_URL")?;
        url.set_path(&config.database_name);
        Ok(Self { options, store, initial_stock, url })
    }
}

/// The run's Temporal dev server, started (not necessarily ready yet): on ports of its own, so
/// that it never disturbs a dev server, with its state in a fresh file under the work dir, so
/// that it can be killed and restarted on the same state.
struct DevServer {
    process: Process,
    port: u16,
    /// Where it serves its Prometheus metrics, when the config asked for them.
    metrics_port: Option<u16>,
}

impl DevServer {
    fn start(config: &ClusterConfig, logs: &Path) -> anyhow::Result<Self> {
        let state = config.work_dir.join("temporal.db");
        let _ = std::fs::remove_file(&state);
        // Ports picked now rather than fixed ones, so that a second cluster on the machine
        // (another benchmark run) does not collide; `start-dev` would pick a random metrics port
        // itself, but then we could not tell which. Both in one go, so that they differ.
        let free = crate::free_ports(2)?;
        let port = config.temporal_port.unwrap_or(free);
        let metrics_port = config.temporal_metrics.then_some(free + 1);
        let port_arg = port.to_string();
        let state = state.to_string_lossy().into_owned();
        let mut args = vec![
            "server",
            "start-dev",
            "--headless",
            "--ip",
            "127.0.0.1",
            "--port",
            &port_arg,
            "--db-filename",
            &state,
            "--log-level",
            "warn",
        ];
        let metrics_arg = metrics_port.map(|p| p.to_string());
        if let Some(metrics_arg) = &metrics_arg {
            args.extend(["--metrics-port", metrics_arg.as_str()]);
        }
        args.extend(config.temporal_args.iter().map(String::as_str));
        let mut process = Process::new("temporal", &config.temporal_cli, &args, vec![], logs);
        process.start()?;
        Ok(Self { process, port, metrics_port })
    }
}

/// The environment every OrderFlow process of the cluster shares: its database, the dev server
/// and task queue, and no per-client write limit (the load generator is one client at one
/// address: such a limit would measure the limit, not the service).
fn common_env(
    config: &ClusterConfig,
    database_url: &url::Url,
    temporal_port: u16,
) -> Vec<(String, String)> {
    vec![
        ("DATABASE_URL".to_owned(), database_url.to_string()),
        ("DATABASE_MAX_CONNECTIONS".to_owned(), "5".to_owned()),
        ("TEMPORAL_HOST".to_owned(), "127.0.0.1".to_owned()),
        ("TEMPORAL_PORT".to_owned(), temporal_port.to_string()),
        ("TEMPORAL_TASK_QUEUE".to_owned(), config.task_queue.clone()),
        ("RUST_LOG".to_owned(), "info,temporalio_sdk_core=warn".to_owned()),
        ("RATE_LIMIT_WRITES_PER_SECOND".to_owned(), "0".to_owned()),
        // Every client of a cluster (the load, the provider's webhooks) is 127.0.0.1.
        ("HTTP_MAX_CONNECTIONS_PER_CLIENT".to_owned(), "1024".to_owned()),
    ]
}

async fn load_catalog(
    store: &Store,
    products: &[(String, String, i32)],
) -> anyhow::Result<BTreeMap<String, i32>> {
    let mut initial = BTreeMap::new();
    for (id, price, available) in products {
        store
            .add_product(&NewProduct {
                id: id.clone(),
                name: format!("Product {id}"),
                sku: id.to_uppercase(),
                price: Decimal::from_str(price)?,
                available: *available,
            })
            .await?;
        initial.insert(id.clone(), *available);
    }
    Ok(initial)
}
