use crate::config::{DatabaseConfig, HttpConfig, SimulationConfig, TemporalConfig, WorkerConfig};
use anyhow::Context;
use orderflow_activities::{OrderSteps, StuckSteps};
use orderflow_api::{AdminKey, Admission, ApiContext, Limit, Orchestrator, latency_target};
use orderflow_domain::DatabaseId;
use orderflow_providers::{SimulatedNotifier, SimulatedPaymentGateway};
use orderflow_store::Store;
use orderflow_workflow::OrderWorkflow;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use temporalio_client::{Client, ClientOptions, Connection, ConnectionOptions, Url};
use temporalio_sdk::runtime::worker_tuner::{FixedSizeSlotSupplier, TunerHolder};
use temporalio_sdk::{Runtime, Worker, WorkerOptions};
use tokio::net::TcpListener;

/// What every process needs: the database and the Temporal client.
#[derive(Clone)]
pub struct Dependencies {
    pub store: Store,
    /// The identity of the store's database, which every order carries.
    pub database: DatabaseId,
    pub temporal: Client,
}

/// A pool of `size` connections over the configured database. Lazy: connections open on first
/// use. The API and the worker each get their own (see `DatabaseConfig`).
pub fn connect_store(config: &DatabaseConfig, size: u32) -> anyhow::Result<Store> {
    Ok(Store::connect_lazy(config.connect_options()?, size))
}

/// Applies migrations, waiting for PostgreSQL to answer first (it may still be starting).
pub async fn migrate(store: &Store) -> anyhow::Result<()> {
    retry("PostgreSQL", || store.ping()).await;
    store.migrate().await.context("applying database migrations")?;
    Ok(())
}

/// Connects to Temporal, waiting for the server to answer (it may still be starting).
pub async fn connect_temporal(config: &TemporalConfig) -> anyhow::Result<Client> {
    let url = Url::parse(&config.url()).with_context(|| {
        format!("TEMPORAL_HOST/TEMPORAL_PORT do not form a valid URL: {}", config.url())
    })?;
    let connection = retry("Temporal", || {
        let options = ConnectionOptions::new(url.clone()).identity(identity()).build();
        Connection::connect(options)
    })
    .await;
    Ok(Client::new(connection, ClientOptions::new(config.namespace.clone()).build())?)
}

/// The Temporal worker for the order workflow and its activities.
pub fn build_worker(
    runtime: &Runtime,
    deps: &Dependencies,
    task_queue: &str,
    worker: &WorkerConfig,
    simulation: &SimulationConfig,
) -> anyhow::Result<Worker> {
    let steps = OrderSteps {
        store: deps.store.clone(),
        database: deps.database,
        payments: Arc::new(SimulatedPaymentGateway::new(
            simulation.payment_decline_above,
            simulation.payment_delay,
            simulation.payment_transient_failure_rate,
        )),
        notifier: Arc::new(SimulatedNotifier::new(
            simulation.notification_delay,
            simulation.notification_failure_rate,
        )),
        inventory_delay: simulation.inventory_delay,
        stuck: StuckSteps::new(deps.store.clone(), worker.stuck_after_attempts),
    };
    let slots = |n: u16| FixedSizeSlotSupplier::new(usize::from(n));
    let tuner = TunerHolder::builder()
        .workflow_task_slot_supplier(slots(worker.workflow_slots))
        .activity_task_slot_supplier(slots(worker.activity_slots))
        .local_activity_task_slot_supplier(slots(worker.activity_slots))
        .nexus_task_slot_supplier(slots(1))
        .build();
    let options = WorkerOptions::new(task_queue)
        .max_cached_workflows(worker.max_cached_workflows)
        .tuner(tuner)
        .register_workflow::<OrderWorkflow>()?
        .register_activities(steps)
        .build();
    Ok(Worker::new(runtime, deps.temporal.clone(), options)?)
}

/// The API's context from the configuration.
pub fn api_context(
    deps: &Dependencies,
    http: &HttpConfig,
    task_queue: &str,
) -> anyhow::Result<ApiContext> {
    let admin_key = match http.admin_api_key.as_deref() {
        None => None,
        Some(key) => Some(
            AdminKey::new(key).ok_or_else(|| anyhow::anyhow!("ADMIN_API_KEY must not be empty"))?,
        ),
    };
    if admin_key.is_none() {
        tracing::info!("admin endpoints disabled (no ADMIN_API_KEY)");
    }
    let orchestrator = Orchestrator::new(deps.temporal.clone(), task_queue, deps.database)
        .with_task_timeout(http.workflow_task_timeout);
    Ok(ApiContext {
        admin_key,
        temporal_ui_url: http.temporal_ui_url.trim_end_matches('/').to_owned(),
        admission: Admission::new(
            deps.store.clone(),
            Limit::new(http.max_orders_in_flight, latency_target(http.workflow_task_timeout)),
            http.admission_lease,
        ),
        ..ApiContext::new(deps.store.clone(), orchestrator)
    })
}

/// Serves only `/metrics`, for worker processes.
pub async fn serve_metrics(
    port: u16,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let listener = TcpListener::bind(("0.0.0.0", port)).await?;
    tracing::info!("metrics on http://0.0.0.0:{port}/metrics");
    orderflow_api::metrics::recorder();
    let app =
        axum::Router::new().route("/metrics", axum::routing::get(orderflow_api::metrics::render));
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await?;
    Ok(())
}

/// Serves the API on `listener` until `shutdown` resolves, then finishes in-flight requests.
pub async fn serve_http(
    listener: TcpListener,
    ctx: ApiContext,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    axum::serve(listener, orderflow_api::router(ctx)).with_graceful_shutdown(shutdown).await?;
    Ok(())
}

/// Shutdown on SIGTERM or Ctrl-C, with a deadline. Cheap to clone.
#[derive(Clone)]
pub struct Shutdown {
    requested: tokio::sync::watch::Receiver<bool>,
}

impl Shutdown {
    /// Listens for the signals from now on.
    pub fn on_signals() -> Self {
        let (tell, requested) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            shutdown_signal().await;
            let _ = tell.send(true);
            // Keep the sender: a dropped one would read as "never requested".
            std::future::pending::<()>().await;
        });
        Self { requested }
    }

    /// Resolves once shutdown is requested.
    pub async fn requested(&self) {
        let _ = self.requested.clone().wait_for(|requested| *requested).await;
    }

    /// Resolves `grace` after shutdown was requested: work still in flight then is abandoned.
    pub async fn deadline(&self, grace: Duration) {
        self.requested().await;
        tokio::time::sleep(grace).await;
    }
}

/// Ends the process when the shutdown grace period is over with work still in flight: a step
/// that was cut off is retried by another worker once its timeout passes (every step is
/// idempotent), and an HTTP request cut off gets a broken connection, which the client retries.
pub fn exit_after_grace(grace: Duration) -> ! {
    tracing::warn!(
        "shutdown grace period of {} ms is over; exiting with work in flight (other workers \
         retry it)",
        grace.as_millis()
    );
    std::process::exit(0)
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown requested; finishing in-flight work");
}

/// Calls `attempt` until it succeeds, saying what it waits for: a dependency that is still
/// starting should delay start-up, not crash it.
async fn retry<T, E, F, Fut>(what: &str, mut attempt: F) -> T
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut delay = Duration::from_millis(200);
    loop {
        match attempt().await {
            Ok(value) => return value,
            Err(e) => {
                tracing::warn!("waiting for {what}: {e}");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

fn identity() -> String {
    let host =
        std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_owned()).unwrap_or_default();
    format!("orderflow-{}@{host}", std::process::id())
}
