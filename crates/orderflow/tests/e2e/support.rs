//! `TestApp`: the real OrderFlow (HTTP API + Temporal worker) on a free port, against a fresh
//! PostgreSQL database and the Temporal server `make test` started, with a task queue of its
//! own so that tests running in parallel never pick up each other's workflows.

use orderflow::config::{
    AuthMode, DatabaseConfig, HttpConfig, PaymentConfig, SimulationConfig, TemporalConfig,
    WorkerConfig, defaults,
};
use orderflow::shutdown::ShutdownTrigger;
use orderflow::{App, AppConfig, RegisterWorkflow, Shutdown, this_release};
use orderflow_api::OrderAccepted;
use orderflow_api::auth::{NewToken, mint_hs256};
use orderflow_domain::{DatabaseId, OrderState, WorkflowId};
use orderflow_store::testing::{TestDatabase, fresh_database, server_from_env};
use orderflow_store::{NewProduct, Store};
use orderflow_workflow::OrderWorkflow;
use rust_decimal::Decimal;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::Duration;
use temporalio_client::{
    Client, WorkflowFetchHistoryOptions, WorkflowGetResultOptions, WorkflowHistory,
};
use temporalio_common::worker::WorkerDeploymentVersion;
use temporalio_sdk::workflow_replayer::{WorkflowReplayer, WorkflowReplayerOptions};

pub use crate::provider::{ProviderKnobs, TestProvider, WEBHOOK_SECRET};

/// The admin API key of every test app.
pub const ADMIN_KEY: &str = "test-admin-key-0123456789";

/// The HS256 secret of the apps started with `AUTH_MODE=jwt`.
pub const JWT_SECRET: &str = "test-jwt-secret-of-at-least-32-bytes";

/// The API's settings of a test app: the defaults, with the admin key set, and the per-client
/// write and connection limits as high as the global ones (tests place hundreds of orders at
/// once from one address; the limits have their own tests).
pub fn test_http() -> HttpConfig {
    let mut http = HttpConfig { admin_api_key: Some(ADMIN_KEY.into()), ..HttpConfig::default() };
    http.auth.writes_per_second = 0;
    http.http_max_connections_per_client = http.http_max_connections;
    http
}

/// `http` with a 2 s workflow task timeout, for tests that cancel an order during a slow step:
/// a cancel update reaches the workflow when the worker heartbeats the task running the step,
/// at 80% of the timeout, so 1.6 s in, well before the step's simulated 4–5 s end (with the
/// default 5 s, the heartbeat and the step's end would race).
pub fn quick_heartbeats(mut http: HttpConfig) -> HttpConfig {
    http.workflow_task_timeout = Duration::from_secs(2);
    http
}

/// `test_http` with `AUTH_MODE=jwt` and the HS256 secret `JWT_SECRET`.
pub fn jwt_http() -> HttpConfig {
    let mut http = test_http();
    http.auth.mode = AuthMode::Jwt;
    http.auth.hs256_secret = Some(JWT_SECRET.into());
    http
}

/// A token for `sub` with `roles`, signed with `JWT_SECRET`, valid for an hour.
pub fn token(sub: &str, roles: &[&str]) -> String {
    mint_hs256(&JWT_SECRET.into(), &NewToken::new(sub, roles, Duration::from_secs(3600)))
}

pub struct TestApp {
    pub address: String,
    pub store: Store,
    pub database_id: DatabaseId,
    pub http: reqwest::Client,
    pub temporal: Client,
    /// The API process's configuration; its workers' differ in their `worker` part.
    config: AppConfig,
    simulation: SimulationConfig,
    /// The simulated payment provider, when the app was spawned with one.
    pub provider: Option<TestProvider>,
    /// Held for its lifetime: dropping it stops the API.
    _api: AppThread,
    worker: Option<AppThread>,
    foreign_workers: Vec<AppThread>,
    // Last, so that they are dropped after the workers using them are told to stop.
    database: TestDatabase,
    foreign_databases: Vec<TestDatabase>,
}

/// The README's example order, exactly.
pub fn readme_order() -> Value {
    json!({
        "customer_id": "customer-001",
        "items": [
            {"product_id": "prod-001", "name": "iPhone 15 Pro", "quantity": 1, "price": 999.99}
        ]
    })
}

/// An order of `quantity` units of one product at `price`.
pub fn order_of(product: &str, quantity: i64, price: &str) -> Value {
    json!({
        "customer_id": "customer-test",
        "items": [{"product_id": product, "name": product, "quantity": quantity, "price": price}]
    })
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(SimulationConfig::default()).await
    }

    pub async fn spawn_with(simulation: SimulationConfig) -> Self {
        Self::spawn_configured(simulation, test_http()).await
    }

    /// With `AUTH_MODE=jwt` (tokens from [`token`]).
    pub async fn spawn_jwt() -> Self {
        Self::spawn_configured(SimulationConfig::default(), jwt_http()).await
    }

    /// With the API's settings too (admission limits, task timeout, ...); start from
    /// [`test_http`].
    pub async fn spawn_configured(simulation: SimulationConfig, http: HttpConfig) -> Self {
        let mut app = Self::api_only(simulation, http).await;
        app.start_worker();
        app
    }

    /// The API alone: orders are accepted but nothing processes them until `start_worker`.
    pub async fn spawn_without_worker(simulation: SimulationConfig) -> Self {
        Self::api_only(simulation, test_http()).await
    }

    /// [`Self::spawn_without_worker`], with the API's settings too.
    pub async fn spawn_without_worker_configured(
        simulation: SimulationConfig,
        http: HttpConfig,
    ) -> Self {
        Self::api_only(simulation, http).await
    }

    /// With the simulated payment provider (`orderflow psp`, in process, on a ledger database
    /// of its own) reached over HTTP, its webhooks signed with [`WEBHOOK_SECRET`] and sent to
    /// this app, and the orders' confirmation timeout `confirmation_timeout`.
    pub async fn spawn_with_provider(knobs: ProviderKnobs, confirmation_timeout: Duration) -> Self {
        Self::spawn_with_provider_and(knobs, confirmation_timeout, |_| {}).await
    }

    /// [`Self::spawn_with_provider`], with payment settings changed by `adjust`.
    pub async fn spawn_with_provider_and(
        knobs: ProviderKnobs,
        confirmation_timeout: Duration,
        adjust: impl FnOnce(&mut PaymentConfig),
    ) -> Self {
        Self::spawn_with_provider_configured(knobs, confirmation_timeout, test_http(), adjust).await
    }

    /// [`Self::spawn_with_provider_and`], with the API's settings too.
    pub async fn spawn_with_provider_configured(
        knobs: ProviderKnobs,
        confirmation_timeout: Duration,
        http: HttpConfig,
        adjust: impl FnOnce(&mut PaymentConfig),
    ) -> Self {
        let provider = TestProvider::start(knobs).await;
        let mut payments = PaymentConfig {
            provider_url: Some(provider.url.clone()),
            confirmation_timeout,
            webhook_secret: Some(WEBHOOK_SECRET.into()),
            dashboard_simulator: false,
        };
        adjust(&mut payments);
        let mut app = Self::wire(SimulationConfig::default(), http, payments).await;
        provider.deliver_webhooks_to(app.url("/api/webhooks/payments"));
        app.provider = Some(provider);
        app.start_worker();
        app
    }

    /// The API, built as the binary builds it (`App`), on a free port.
    async fn api_only(simulation: SimulationConfig, http: HttpConfig) -> Self {
        Self::wire(simulation, http, PaymentConfig::default()).await
    }

    async fn wire(simulation: SimulationConfig, http: HttpConfig, payments: PaymentConfig) -> Self {
        let database = fresh_database(&server_from_env()).await;
        let store = database.store.clone();
        let temporal_config = TemporalConfig {
            temporal_host: Some(
                std::env::var("TEMPORAL_HOST").unwrap_or_else(|_| "localhost".into()),
            ),
            temporal_port: Some(
                std::env::var("TEMPORAL_PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(7233),
            ),
            namespace: None,
            task_queue: format!("orderflow-test-{}", uuid::Uuid::new_v4().simple()),
            api_key: None,
        };
        let temporal =
            orderflow::temporal::connect(&temporal_config).await.expect("connect to Temporal");
        let database_id = store.database_id().await.expect("the database's identity");
        let http = HttpConfig { http_host: "127.0.0.1".into(), http_port: 0, ..http };
        let config = AppConfig {
            database: database_config(&database),
            temporal: temporal_config,
            payments,
            http: Some(http),
            worker: None,
            metrics: defaults(),
            shutdown: defaults(),
        };
        let api = AppThread::start(config.clone(), this_release).await;
        let address = format!("http://{}", api.address.expect("the API listens"));
        Self {
            address,
            store,
            database_id,
            http: reqwest::Client::new(),
            temporal,
            database,
            config,
            simulation,
            provider: None,
            _api: api,
            worker: None,
            foreign_workers: Vec::new(),
            foreign_databases: Vec::new(),
        }
    }

    /// A worker process's configuration: this app's, with `worker` and on `database`.
    fn worker_config(&self, worker: WorkerConfig, database: &TestDatabase) -> AppConfig {
        AppConfig {
            database: database_config(database),
            http: None,
            worker: Some((worker, self.simulation.clone())),
            ..self.config.clone()
        }
    }

    /// Starts the worker (as `orderflow worker` would run, in this process).
    pub fn start_worker(&mut self) {
        let config = self.worker_config(WorkerConfig::default(), &self.database);
        self.worker = Some(AppThread::spawn(config, this_release));
    }

    /// A worker of a versioned release (`TEMPORAL_WORKER_DEPLOYMENT_NAME` + `_BUILD_ID`) running
    /// the workflow `register` registers; it stops when the returned handle is dropped.
    pub fn start_release(
        &self,
        version: &WorkerDeploymentVersion,
        register: RegisterWorkflow,
    ) -> AppThread {
        let worker = WorkerConfig {
            deployment_name: Some(version.deployment_name.clone()),
            build_id: Some(version.build_id.clone()),
            ..WorkerConfig::default()
        };
        AppThread::spawn(self.worker_config(worker, &self.database), register)
    }

    /// This test's worker deployment (named after its task queue, so tests never share one).
    pub fn release(&self, build_id: &str) -> WorkerDeploymentVersion {
        WorkerDeploymentVersion::builder()
            .deployment_name(format!("orderflow-{}", self.task_queue()))
            .build_id(build_id)
            .build()
    }

    /// Another deployment's worker: its own fresh database, but this app's task queue (the
    /// misconfiguration that deployment isolation guards against). Returns its database.
    pub async fn start_foreign_worker(&mut self) -> Store {
        let database = fresh_database(&server_from_env()).await;
        let store = database.store.clone();
        let config = self.worker_config(WorkerConfig::default(), &database);
        self.foreign_workers.push(AppThread::spawn(config, this_release));
        self.foreign_databases.push(database);
        store
    }

    /// An `orderflow worker` process (the real binary) on this app's database and task queue,
    /// with extra settings, e.g. `SHUTDOWN_GRACE_MS`. Its log is kept in `test-artifacts/`.
    pub fn worker_process(&self, env: &[(&str, &str)]) -> WorkerProcess {
        self.process("worker", env)
    }

    /// `orderflow <subcommand>` as a child process on this app's database and task queue.
    pub fn process(&self, subcommand: &str, env: &[(&str, &str)]) -> WorkerProcess {
        let log_path = artifacts().join(format!("{subcommand}-{}.log", self.task_queue()));
        let log = std::fs::File::create(&log_path).expect("a log file");
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_orderflow"));
        // Tests read the log: its level is theirs, not the environment's.
        command
            .arg(subcommand)
            .env("DATABASE_URL", database_url(&self.database))
            .env("RUST_LOG", "info");
        // Temporal's standard configuration, when given, instead of the Go service's variables.
        if env
            .iter()
            .any(|(name, _)| name.starts_with("TEMPORAL_TLS") || *name == "TEMPORAL_ADDRESS")
        {
            command.env_remove("TEMPORAL_HOST").env_remove("TEMPORAL_PORT");
        } else {
            let host = self.config.temporal.temporal_host.as_deref().unwrap_or_default();
            let port = self.config.temporal.temporal_port.unwrap_or(7233).to_string();
            command.env("TEMPORAL_HOST", host).env("TEMPORAL_PORT", port);
        }
        let child = command
            .env("TEMPORAL_TASK_QUEUE", self.task_queue())
            .envs(env.iter().copied())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("the orderflow binary starts");
        WorkerProcess { child, log: log_path }
    }

    pub fn task_queue(&self) -> &str {
        &self.config.temporal.task_queue
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn post_order(&self, body: &Value) -> reqwest::Response {
        self.http.post(self.url("/api/orders")).json(body).send().await.unwrap()
    }

    /// Places an order that must be accepted; returns its workflow id.
    pub async fn place(&self, body: &Value) -> WorkflowId {
        let response = self.post_order(body).await;
        assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
        let accepted: OrderAccepted = response.json().await.unwrap();
        WorkflowId::parse(&accepted.workflow_id).expect("an order's workflow id")
    }

    pub async fn get_text(&self, path: &str) -> (u16, String) {
        let response = self.http.get(self.url(path)).send().await.unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        let response = self.http.get(self.url(path)).send().await.unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    pub async fn status(&self, workflow_id: WorkflowId) -> Value {
        let (code, body) =
            self.get_json(&format!("/api/orders/status?workflow_id={workflow_id}")).await;
        assert_eq!(code, 200, "{body}");
        body
    }

    pub async fn cancel(&self, workflow_id: WorkflowId) -> (u16, Value) {
        let response = self
            .http
            .post(self.url(&format!("/api/orders/cancel?workflow_id={workflow_id}")))
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    /// Polls the status endpoint until the order has `status`.
    pub async fn wait_for_status(&self, workflow_id: WorkflowId, status: &str) {
        for _ in 0..600 {
            if self.status(workflow_id).await["status"] == status {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{workflow_id} never reached {status}: {}", self.status(workflow_id).await);
    }

    /// Waits for the workflow to finish and returns its result: the final state.
    pub async fn outcome(&self, workflow_id: WorkflowId) -> OrderState {
        self.outcome_within(workflow_id, Duration::from_secs(60)).await
    }

    /// [`Self::outcome`], for an order that may wait on a long retry backoff.
    pub async fn outcome_within(&self, workflow_id: WorkflowId, bound: Duration) -> OrderState {
        let handle = self.temporal.get_workflow_handle::<OrderWorkflow>(workflow_id.to_string());
        tokio::time::timeout(bound, handle.get_result(WorkflowGetResultOptions::default()))
            .await
            .unwrap_or_else(|_| panic!("{workflow_id} did not finish within {bound:?}"))
            .expect("the workflow completes")
    }

    /// Replays the workflow's recorded history against the current code: a non-deterministic
    /// workflow change fails here. With `ORDERFLOW_RECORD_HISTORIES=<dir>` the history is also
    /// saved as `<dir>/<name>.json`, which is how `crates/workflow/tests/histories` was made.
    pub async fn replay(&self, workflow_id: WorkflowId, name: &str) {
        let handle = self.temporal.get_workflow_handle::<OrderWorkflow>(workflow_id.to_string());
        let json = handle
            .fetch_history(WorkflowFetchHistoryOptions::default())
            .to_json()
            .await
            .expect("fetch the workflow history");
        replay_history(&json).await;
        if let Ok(dir) = std::env::var("ORDERFLOW_RECORD_HISTORIES") {
            std::fs::write(format!("{dir}/{name}.json"), &json).expect("save the history");
        }
    }

    /// (available, reserved, sold)
    pub async fn stock(&self, product: &str) -> (i32, i32, i32) {
        let p = self.store.product(product).await.unwrap().expect("product exists");
        (p.available, p.reserved, p.sold)
    }

    pub async fn add_product(&self, id: &str, price: &str, available: i32) {
        self.store
            .add_product(&NewProduct {
                id: id.into(),
                name: format!("Test product {id}"),
                sku: format!("SKU-{id}"),
                price: price.parse::<Decimal>().unwrap(),
                available,
            })
            .await
            .unwrap();
    }

    /// Runs a statement directly on the app's database (to break or repair it).
    pub async fn execute(&self, sql: &str) {
        sqlx::raw_sql(sql).execute(self.store.pool()).await.unwrap();
    }

    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql).fetch_one(self.store.pool()).await.unwrap()
    }
}

/// Where tests keep what a person may want to look at afterwards (logs, screenshots).
pub fn artifacts() -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../test-artifacts");
    std::fs::create_dir_all(&dir).expect("test-artifacts/");
    dir
}

/// A worker running as its own process.
pub struct WorkerProcess {
    child: tokio::process::Child,
    log: std::path::PathBuf,
}

impl WorkerProcess {
    /// SIGTERM, as Kubernetes or Ctrl-C would send it.
    pub fn terminate(&self) {
        let pid = self.child.id().expect("the worker is running");
        let sent = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status();
        assert!(sent.is_ok_and(|s| s.success()), "SIGTERM sent");
    }

    /// What it has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits for the process to exit, at most `limit`; `None` if it is still running.
    pub async fn exited_within(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        tokio::time::timeout(limit, self.child.wait()).await.ok().map(|s| s.expect("wait"))
    }
}

/// Replays one exported history (JSON) with the current workflow code.
pub async fn replay_history(json: &[u8]) {
    let history = WorkflowHistory::from_json(json).expect("a history export");
    let options = WorkflowReplayerOptions::new()
        .register_workflow::<OrderWorkflow>()
        .expect("register the workflow")
        .build();
    let replayer = WorkflowReplayer::new(options).expect("a replayer");
    replayer.replay_workflow(history).await.expect("the history replays deterministically");
}

/// The URL of a test database, as `DATABASE_URL`.
fn database_url(database: &TestDatabase) -> String {
    let name = database.options.get_database().expect("a test database has a name");
    let server = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| orderflow_store::DEFAULT_DATABASE_URL.into());
    let (server, _) = server.rsplit_once('/').expect("DATABASE_URL names a database");
    format!("{server}/{name}")
}

fn database_config(database: &TestDatabase) -> DatabaseConfig {
    DatabaseConfig { database_url: Some(database_url(database).into()), ..defaults() }
}

/// An [`App`] running on a thread of its own, with a runtime of its own: the SDK's worker is
/// not `Send`, and the app stays independent of the test's runtime. Dropping it shuts the
/// app down as SIGTERM would.
pub struct AppThread {
    address: Option<SocketAddr>,
    _stop: ShutdownTrigger,
}

impl AppThread {
    /// Builds and runs the app; returns once it is built (its listener bound).
    async fn start(config: AppConfig, register: RegisterWorkflow) -> Self {
        let (built, ready) = tokio::sync::oneshot::channel();
        let mut app = Self::run(config, register, Some(built));
        app.address = ready.await.expect("the app's thread").expect("the app builds");
        app
    }

    /// Builds and runs the app without waiting for it.
    fn spawn(config: AppConfig, register: RegisterWorkflow) -> Self {
        Self::run(config, register, None)
    }

    fn run(
        config: AppConfig,
        register: RegisterWorkflow,
        built: Option<tokio::sync::oneshot::Sender<Result<Option<SocketAddr>, String>>>,
    ) -> Self {
        let (shutdown, stop) = Shutdown::on_request();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("a runtime for the app");
            runtime.block_on(async move {
                let app = match App::build(config).await {
                    Ok(app) => app.with_workflow(register),
                    Err(e) => match built {
                        Some(built) => return drop(built.send(Err(format!("{e:#}")))),
                        None => panic!("the app builds: {e:#}"),
                    },
                };
                if let Some(built) = built {
                    let _ = built.send(Ok(app.address()));
                }
                app.run_until_stopped(shutdown).await.expect("the app runs");
            });
        });
        Self { address: None, _stop: stop }
    }
}
