//! `TestApp`: the real OrderFlow (HTTP API + Temporal worker) on a free port, against a fresh
//! PostgreSQL database and the Temporal server `make test` started, with a task queue of its
//! own so that tests running in parallel never pick up each other's workflows.

use orderflow::config::{
    AuthMode, HttpConfig, PaymentConfig, SimulationConfig, TemporalConfig, WorkerConfig,
};
use orderflow::{
    Dependencies, api_context, connect_temporal, order_steps, sdk_runtime, serve_http,
    worker_options,
};
use orderflow_api::OrderAccepted;
use orderflow_api::auth::{NewToken, mint_hs256};
use orderflow_domain::{DatabaseId, OrderState, WorkflowId};
use orderflow_store::testing::{TestDatabase, fresh_database, server_from_env};
use orderflow_store::{NewProduct, Store};
use orderflow_workflow::OrderWorkflow;
use rust_decimal::Decimal;
use serde_json::{Value, json};
use sqlx::postgres::PgConnectOptions;
use std::time::Duration;
use temporalio_client::{
    Client, WorkflowFetchHistoryOptions, WorkflowGetResultOptions, WorkflowHistory,
};
use temporalio_common::worker::WorkerDeploymentVersion;
use temporalio_sdk::workflow_replayer::{WorkflowReplayer, WorkflowReplayerOptions};
use temporalio_sdk::{Worker, WorkerOptions};
use tokio::net::TcpListener;

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
    temporal_config: TemporalConfig,
    simulation: SimulationConfig,
    payments: PaymentConfig,
    /// The simulated payment provider, when the app was spawned with one.
    pub provider: Option<TestProvider>,
    worker: Option<WorkerThread>,
    foreign_workers: Vec<WorkerThread>,
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
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind a free port");
        let webhook_url =
            format!("http://{}/api/webhooks/payments", listener.local_addr().unwrap());
        let provider = TestProvider::start(knobs, Some(webhook_url)).await;
        let mut payments = PaymentConfig {
            provider_url: Some(provider.url.clone()),
            confirmation_timeout,
            webhook_secret: Some(WEBHOOK_SECRET.into()),
            dashboard_simulator: false,
        };
        adjust(&mut payments);
        let mut app = Self::wire(SimulationConfig::default(), http, payments, listener).await;
        app.provider = Some(provider);
        app.start_worker();
        app
    }

    /// The API, wired as the binary wires it (`api_context`), on a free port.
    async fn api_only(simulation: SimulationConfig, http: HttpConfig) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind a free port");
        Self::wire(simulation, http, PaymentConfig::default(), listener).await
    }

    async fn wire(
        simulation: SimulationConfig,
        http: HttpConfig,
        payments: PaymentConfig,
        listener: TcpListener,
    ) -> Self {
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
        };
        let temporal = connect_temporal(&temporal_config).await.expect("connect to Temporal");
        let address = format!("http://{}", listener.local_addr().unwrap());
        let database_id = store.database_id().await.expect("the database's identity");
        let deps = Dependencies {
            store: store.clone(),
            database: database_id,
            temporal: temporal.clone(),
        };
        let ctx = api_context(&deps, &http, &payments, &temporal_config.task_queue)
            .expect("the API's wiring");
        tokio::spawn(serve_http(listener, ctx, http.connection_limits(), std::future::pending()));
        Self {
            address,
            store,
            database_id,
            http: reqwest::Client::new(),
            temporal,
            database,
            temporal_config,
            simulation,
            payments,
            provider: None,
            worker: None,
            foreign_workers: Vec::new(),
            foreign_databases: Vec::new(),
        }
    }

    /// Starts the worker on a thread of its own: the SDK's worker future is not `Send`, and a
    /// runtime of its own keeps it independent of the test's.
    pub fn start_worker(&mut self) {
        self.worker = Some(WorkerThread::start(
            self.database.options.clone(),
            self.database_id,
            self.temporal_config.clone(),
            self.simulation.clone(),
            self.payments.clone(),
        ));
    }

    /// A worker of a versioned release (`TEMPORAL_WORKER_DEPLOYMENT_NAME` + `_BUILD_ID`) running
    /// the workflow `register` registers; it stops when the returned handle is dropped.
    pub fn start_release(
        &self,
        version: &WorkerDeploymentVersion,
        register: RegisterWorkflow,
    ) -> WorkerThread {
        let worker = WorkerConfig {
            deployment_name: Some(version.deployment_name.clone()),
            build_id: Some(version.build_id.clone()),
            ..WorkerConfig::default()
        };
        WorkerThread::start_release(
            self.database.options.clone(),
            self.database_id,
            self.temporal_config.clone(),
            self.simulation.clone(),
            self.payments.clone(),
            worker,
            register,
        )
    }

    /// This test's worker deployment (named after its task queue, so tests never share one).
    pub fn release(&self, build_id: &str) -> WorkerDeploymentVersion {
        WorkerDeploymentVersion::builder()
            .deployment_name(format!("orderflow-{}", self.temporal_config.task_queue))
            .build_id(build_id)
            .build()
    }

    /// Another deployment's worker: its own fresh database, but this app's task queue (the
    /// misconfiguration that deployment isolation guards against). Returns its database.
    pub async fn start_foreign_worker(&mut self) -> Store {
        let database = fresh_database(&server_from_env()).await;
        let store = database.store.clone();
        let database_id = store.database_id().await.expect("the database's identity");
        self.foreign_workers.push(WorkerThread::start(
            database.options.clone(),
            database_id,
            self.temporal_config.clone(),
            self.simulation.clone(),
            self.payments.clone(),
        ));
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
        let database = self.database.options.get_database().expect("a test database has a name");
        let server = std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| orderflow_store::DEFAULT_DATABASE_URL.into());
        let (server, _) = server.rsplit_once('/').expect("DATABASE_URL names a database");
        let log_path =
            artifacts().join(format!("{subcommand}-{}.log", self.temporal_config.task_queue));
        let log = std::fs::File::create(&log_path).expect("a log file");
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_orderflow"));
        // Tests read the log: its level is theirs, not the environment's.
        command
            .arg(subcommand)
            .env("DATABASE_URL", format!("{server}/{database}"))
            .env("RUST_LOG", "info");
        // Temporal's standard configuration, when given, instead of the seed's variables.
        if env
            .iter()
            .any(|(name, _)| name.starts_with("TEMPORAL_TLS") || *name == "TEMPORAL_ADDRESS")
        {
            command.env_remove("TEMPORAL_HOST").env_remove("TEMPORAL_PORT");
        } else {
            let host = self.temporal_config.temporal_host.as_deref().unwrap_or_default();
            let port = self.temporal_config.temporal_port.unwrap_or(7233).to_string();
            command.env("TEMPORAL_HOST", host).env("TEMPORAL_PORT", port);
        }
        let child = command
            .env("TEMPORAL_TASK_QUEUE", &self.temporal_config.task_queue)
            .envs(env.iter().copied())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("the orderflow binary starts");
        WorkerProcess { child, log: log_path }
    }

    pub fn task_queue(&self) -> &str {
        &self.temporal_config.task_queue
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

pub struct WorkerThread {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

/// Registers the order workflow a worker runs: this release's, or a test's other version.
pub type RegisterWorkflow = fn(&mut WorkerOptions);

pub fn this_release(options: &mut WorkerOptions) {
    options.register_workflow::<OrderWorkflow>().expect("register the workflow");
}

impl WorkerThread {
    fn start(
        database: PgConnectOptions,
        database_id: DatabaseId,
        temporal: TemporalConfig,
        simulation: SimulationConfig,
        payments: PaymentConfig,
    ) -> Self {
        let worker = WorkerConfig::default();
        Self::start_release(
            database,
            database_id,
            temporal,
            simulation,
            payments,
            worker,
            this_release,
        )
    }

    fn start_release(
        database: PgConnectOptions,
        database_id: DatabaseId,
        temporal: TemporalConfig,
        simulation: SimulationConfig,
        payments: PaymentConfig,
        worker: WorkerConfig,
        register: RegisterWorkflow,
    ) -> Self {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("a runtime for the worker");
            runtime.block_on(async move {
                let deps = Dependencies {
                    store: Store::connect_lazy(database, 5),
                    database: database_id,
                    temporal: connect_temporal(&temporal).await.expect("connect to Temporal"),
                };
                let sdk = sdk_runtime().expect("an SDK runtime");
                let (steps, _) =
                    order_steps(&deps, &worker, &simulation, &payments).expect("the steps");
                let mut options = worker_options(&temporal.task_queue, &worker);
                register(&mut options);
                options.register_activities(steps);
                let mut worker =
                    Worker::new(&sdk, deps.temporal.clone(), options).expect("a worker");
                let shutdown = worker.shutdown_handle();
                tokio::spawn(async move {
                    let _ = stopped.await;
                    shutdown();
                });
                worker.run().await.expect("the worker runs");
            });
        });
        Self { stop: Some(stop) }
    }
}

impl Drop for WorkerThread {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
