use crate::config::{
    AuthConfig, AuthMode, DatabaseConfig, HttpConfig, PaymentConfig, SimulationConfig,
    TemporalConfig, WorkerConfig,
};
use anyhow::Context;
use axum::extract::ConnectInfo;
use axum::http::Request;
use backon::{ExponentialBuilder, Retryable};
use futures::FutureExt;
use futures::stream::{FuturesUnordered, StreamExt};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use orderflow_activities::{OrderSteps, StuckSteps};
use orderflow_api::{
    AdminKey, Admission, ApiContext, Authenticator, JwtVerifier, Limit, Orchestrator,
    PaymentWebhooks, WriteLimits, latency_target,
};
use orderflow_domain::DatabaseId;
use orderflow_providers::payment_provider::PaymentProvider;
use orderflow_providers::{PaymentGateway, SimulatedNotifier, SimulatedPaymentGateway};
use orderflow_store::Store;
use orderflow_workflow::OrderWorkflow;
use secrecy::ExposeSecret;
use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use temporalio_client::envconfig::LoadClientConfigProfileOptions;
use temporalio_client::{Client, ClientOptions, Connection, ConnectionOptions};
use temporalio_common::envconfig::load_client_config_profile;
use temporalio_common::telemetry::TelemetryOptions;
use temporalio_common::worker::{VersioningBehavior, WorkerDeploymentOptions};
use temporalio_sdk::opentelemetry::OpenTelemetryPlugin;
use temporalio_sdk::runtime::RuntimeOptions;
use temporalio_sdk::runtime::worker_tuner::{FixedSizeSlotSupplier, TunerHolder};
use temporalio_sdk::{Runtime, Worker, WorkerOptions};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

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
    let (options, namespace) = temporal_connection(config, None)?;
    let connection = retry("Temporal", || Connection::connect(options.clone())).await;
    // With traces exported, the client and the workers built on it carry the trace context
    // in Temporal's headers and trace workflow starts, workflows and steps.
    let options = if crate::telemetry::traces_enabled() {
        ClientOptions::new(namespace).plugin(OpenTelemetryPlugin::builder().build()).build()
    } else {
        ClientOptions::new(namespace).build()
    };
    Ok(Client::new(connection, options)?)
}

/// The connection options and namespace: Temporal's standard client configuration (its
/// variables from `environment`, else the process's, and its profile file), with the seed's
/// `TEMPORAL_HOST`/`TEMPORAL_PORT` giving the address when set.
pub fn temporal_connection(
    config: &TemporalConfig,
    environment: Option<&HashMap<String, String>>,
) -> anyhow::Result<(ConnectionOptions, String)> {
    let variable = |name: &str| match environment {
        Some(variables) => variables.get(name).cloned(),
        None => std::env::var(name).ok(),
    };
    let set = |name: &str| variable(name).filter(|v| !v.trim().is_empty());
    // The SDK reads what it is given; what it would skip or misreport is checked here first.
    if let Some(path) = set("TEMPORAL_CONFIG_FILE") {
        anyhow::ensure!(
            std::path::Path::new(&path).is_file(),
            "TEMPORAL_CONFIG_FILE={path}: no such file"
        );
    }
    for name in [
        "TEMPORAL_TLS_CLIENT_CERT_PATH",
        "TEMPORAL_TLS_CLIENT_KEY_PATH",
        "TEMPORAL_TLS_SERVER_CA_CERT_PATH",
    ] {
        if let Some(path) = set(name) {
            anyhow::ensure!(std::path::Path::new(&path).is_file(), "{name}={path}: no such file");
        }
    }
    // Its errors are not `Send`: kept as text.
    let mut profile = load_client_config_profile(
        LoadClientConfigProfileOptions::default(),
        environment,
    )
    .map_err(|e| {
        anyhow::anyhow!(
            "Temporal's client configuration (TEMPORAL_* variables, TEMPORAL_CONFIG_FILE): {e}"
        )
    })?;
    if let Some(address) = config.legacy_address() {
        anyhow::ensure!(
            set("TEMPORAL_ADDRESS").is_none(),
            "TEMPORAL_ADDRESS and TEMPORAL_HOST/TEMPORAL_PORT are both set: keep one"
        );
        profile.address = Some(address);
    }
    if profile.address.as_deref().is_some_and(|a| a.trim().is_empty()) {
        profile.address = None;
    }
    // The API key as a secret may also come from a file (TEMPORAL_API_KEY_FILE).
    if environment.is_none()
        && let Some(key) = crate::config::secret_from_env("TEMPORAL_API_KEY")
    {
        profile.api_key = Some(key.expose_secret().to_owned());
    }
    let tls_from_key = profile.api_key.is_some() && profile.tls.is_none();
    let namespace = config
        .namespace
        .clone()
        .or_else(|| profile.namespace.clone())
        .unwrap_or_else(|| "default".to_owned());
    let mut options = ConnectionOptions::try_from(profile).map_err(|e| {
        anyhow::anyhow!("Temporal's client configuration (TEMPORAL_ADDRESS, TEMPORAL_TLS_*): {e}")
    })?;
    if options.target.scheme() == "https" && options.tls_options.is_none() {
        anyhow::bail!(
            "TEMPORAL_ADDRESS {} is https://, but TLS is off: set TEMPORAL_TLS=true (or give \
             the address without a scheme)",
            options.target
        );
    }
    // Temporal's port, as the CLI assumes, rather than the scheme's 80 or 443.
    if options.target.port().is_none() {
        let _ = options.target.set_port(Some(7233));
    }
    if tls_from_key {
        tracing::info!(
            "TLS to Temporal is on because TEMPORAL_API_KEY is set (TEMPORAL_TLS=false turns it off)"
        );
    }
    options.identity = identity();
    Ok((options, namespace))
}

/// The Temporal SDK's runtime for this process's workers, its metrics joining the service's on
/// `/metrics`.
pub fn sdk_runtime() -> anyhow::Result<Runtime> {
    let telemetry =
        TelemetryOptions::builder().maybe_metrics(orderflow_api::metrics::engine_meter());
    let options = RuntimeOptions::builder()
        .telemetry_options(telemetry.build())
        .build()
        .map_err(|e| anyhow::anyhow!("Temporal SDK runtime options: {e}"))?;
    Ok(Runtime::from_current_tokio(options)?)
}

/// The Temporal worker for the order workflow and its activities, and the count of the steps
/// it has run.
pub fn build_worker(
    runtime: &Runtime,
    deps: &Dependencies,
    task_queue: &str,
    worker: &WorkerConfig,
    simulation: &SimulationConfig,
    payments: &PaymentConfig,
) -> anyhow::Result<(Worker, Arc<AtomicU64>)> {
    let (steps, steps_run) = order_steps(deps, worker, simulation, payments)?;
    let mut options = worker_options(task_queue, worker);
    options.register_workflow::<OrderWorkflow>()?.register_activities(steps);
    Ok((Worker::new(runtime, deps.temporal.clone(), options)?, steps_run))
}

/// The order's steps (the activities), and the count of the steps they have run.
pub fn order_steps(
    deps: &Dependencies,
    worker: &WorkerConfig,
    simulation: &SimulationConfig,
    payments: &PaymentConfig,
) -> anyhow::Result<(OrderSteps, Arc<AtomicU64>)> {
    let steps_run = Arc::new(AtomicU64::new(0));
    // Primed once the recorder is installed (before it, a counter goes nowhere).
    orderflow_api::metrics::recorder();
    orderflow_activities::prime_metrics();
    let steps = OrderSteps {
        steps_run: steps_run.clone(),
        store: deps.store.clone(),
        database: deps.database,
        payments: payment_gateway(payments, simulation)?,
        payment_hold: payments.confirmation_timeout,
        notifier: Arc::new(SimulatedNotifier::new(
            simulation.notification_delay,
            simulation.notification_failure_rate,
        )),
        inventory_delay: simulation.inventory_delay,
        stuck: StuckSteps::new(deps.store.clone(), worker.stuck_after_attempts),
    };
    Ok((steps, steps_run))
}

/// A worker's options before its workflow and activities are registered: its task queue,
/// slots, cache, and worker deployment version.
pub fn worker_options(task_queue: &str, worker: &WorkerConfig) -> WorkerOptions {
    let slots = |n: u16| FixedSizeSlotSupplier::new(usize::from(n));
    let tuner = TunerHolder::builder()
        .workflow_task_slot_supplier(slots(worker.workflow_slots))
        .activity_task_slot_supplier(slots(worker.activity_slots))
        .local_activity_task_slot_supplier(slots(worker.activity_slots))
        .nexus_task_slot_supplier(slots(1))
        .build();
    let mut options = WorkerOptions::new(task_queue)
        .max_cached_workflows(worker.max_cached_workflows)
        .tuner(tuner)
        .build();
    // Pinned: an order runs to its end on the build that started it, so a release may change
    // the workflow freely (no patching, nothing recorded per order); the previous build's
    // workers stay until its orders have drained (README "Releasing a new version").
    if let Some(version) = worker.deployment_version() {
        options.deployment_options = WorkerDeploymentOptions::new(version)
            .use_worker_versioning(true)
            .default_versioning_behavior(VersioningBehavior::Pinned)
            .build();
    }
    options
}

/// How long a call to the payment provider may take before it counts as failed (and is
/// retried: every call is idempotent). Well inside a step's timeout.
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(5);

/// The payment provider at `PAYMENT_PROVIDER_URL`, else the in-process simulation.
pub fn payment_gateway(
    payments: &PaymentConfig,
    simulation: &SimulationConfig,
) -> anyhow::Result<Arc<dyn PaymentGateway>> {
    Ok(match &payments.provider_url {
        Some(url) => Arc::new(
            PaymentProvider::new(url, PROVIDER_TIMEOUT)
                .map_err(|e| anyhow::anyhow!("PAYMENT_PROVIDER_URL: {e}"))?,
        ),
        None => Arc::new(SimulatedPaymentGateway::new(
            simulation.payment_decline_above,
            simulation.payment_delay,
            simulation.payment_transient_failure_rate,
        )),
    })
}

/// Runs the order worker until shutdown is requested, then lets it finish what it runs (the
/// caller bounds that with the grace period).
///
/// After `recycle_after_steps` steps the worker is replaced by a fresh one: temporalio-sdk
/// 1.1.1 keeps a cancellation token for every activity a worker has run, local activities
/// included, for as long as the worker lives (`ActivityHalf::task_tokens_to_cancels` is never
/// pruned): about 200 bytes a step, 1 KB an order, which grew the process by 37 MiB in a
/// 30-minute soak (BENCHMARKS.md "Soak"). The old worker is told to stop first, which also
/// takes it off the client's list for eager workflow start, so the new one can register on the
/// same client and poll at once while the old one finishes its tasks in flight.
pub async fn run_worker(
    build: impl Fn() -> anyhow::Result<(Worker, Arc<AtomicU64>)>,
    recycle_after_steps: u64,
    shutdown: &Shutdown,
) -> anyhow::Result<()> {
    let mut draining = FuturesUnordered::new();
    loop {
        let (mut worker, steps_run) = build()?;
        let stop = worker.shutdown_handle();
        let mut run = async move { worker.run().await.map_err(anyhow::Error::from) }.boxed_local();
        let recycle = async {
            while steps_run.load(Ordering::Relaxed) < recycle_after_steps {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        };
        tokio::pin!(recycle);
        let next = loop {
            tokio::select! {
                // Ended without being asked: an error, or nothing more to run.
                result = &mut run => {
                    result?;
                    break Next::Finish;
                }
                Some(result) = draining.next() => result?,
                () = &mut recycle => break Next::Replace,
                () = shutdown.requested() => break Next::Stop,
            }
        };
        match next {
            Next::Replace => {
                tracing::info!(
                    steps = recycle_after_steps,
                    "replacing the worker with a fresh one"
                );
                stop();
                draining.push(run);
                continue;
            }
            Next::Stop => {
                stop();
                draining.push(run);
            }
            Next::Finish => {}
        }
        // Every worker still finishing its tasks, together.
        while let Some(result) = draining.next().await {
            result?;
        }
        return Ok(());
    }
}

/// What `run_worker` does once its current worker stops running or is due for replacement.
enum Next {
    Replace,
    Stop,
    Finish,
}

/// The API's context from the configuration.
pub fn api_context(
    deps: &Dependencies,
    http: &HttpConfig,
    payments: &PaymentConfig,
    task_queue: &str,
) -> anyhow::Result<ApiContext> {
    let gateway = payment_gateway(payments, &SimulationConfig::default())?;
    if let Some(secret) = &payments.webhook_secret {
        // Anyone who can guess the secret can confirm payments that never happened.
        anyhow::ensure!(
            secret.expose_secret().len() >= MIN_WEBHOOK_SECRET_BYTES,
            "PAYMENT_WEBHOOK_SECRET must be at least {MIN_WEBHOOK_SECRET_BYTES} bytes"
        );
        // The endpoint voids authorizations that arrive late: at the provider that sent them,
        // not at the in-process simulation.
        anyhow::ensure!(
            payments.provider_url.is_some(),
            "PAYMENT_WEBHOOK_SECRET is set but PAYMENT_PROVIDER_URL is not: the API process needs \
             the provider too (it voids authorizations that arrive after their order ended)"
        );
    }
    let admin_key = match &http.admin_api_key {
        None => None,
        Some(key) => Some(AdminKey::new(key.expose_secret()).ok_or_else(|| {
            anyhow::anyhow!("ADMIN_API_KEY must be at least {} characters", AdminKey::MIN_LENGTH)
        })?),
    };
    if admin_key.is_none() {
        tracing::info!("no ADMIN_API_KEY: only operators' tokens reach the operators' endpoints");
    }
    let auth = &http.auth;
    let idempotency_ttl = Duration::from_secs(u64::from(auth.idempotency_ttl_hours) * 3600);
    expire_idempotency_keys(deps.store.clone(), idempotency_ttl);
    let mut orchestrator = Orchestrator::new(deps.temporal.clone(), task_queue, deps.database)
        .with_task_timeout(http.workflow_task_timeout);
    if !http.eager_start {
        orchestrator = orchestrator.without_eager_start();
    }
    Ok(ApiContext {
        admin_key,
        temporal_ui_url: http.temporal_ui_url.trim_end_matches('/').to_owned(),
        admission: Admission::new(
            deps.store.clone(),
            Limit::new(http.max_orders_in_flight, latency_target(http.workflow_task_timeout)),
            http.admission_lease,
        ),
        auth: authenticator(auth)?,
        write_limits: WriteLimits::new(auth.writes_per_second, auth.writes_burst),
        // Bursts of twice the rate: a provider delivers its backlog in batches.
        webhook_limits: WriteLimits::new(
            auth.webhook_requests_per_second,
            auth.webhook_requests_per_second.saturating_mul(2),
        ),
        idempotency_ttl,
        payment_simulator_url: payments
            .provider_url
            .clone()
            .filter(|_| payments.dashboard_simulator),
        webhooks: payments
            .webhook_secret
            .as_ref()
            .map(|secret| PaymentWebhooks { secret: secret.clone(), gateway: gateway.clone() }),
        ..ApiContext::new(deps.store.clone(), orchestrator)
    })
}

/// The shortest webhook secret accepted (Stripe's are 32 random bytes and more).
const MIN_WEBHOOK_SECRET_BYTES: usize = 32;

/// The shortest HS256 secret accepted: RFC 7518 asks for a key as long as the hash (256 bits).
const MIN_HS256_SECRET_BYTES: usize = 32;

/// Who may call the API, from `AUTH_MODE` and the JWT settings.
fn authenticator(config: &AuthConfig) -> anyhow::Result<Authenticator> {
    match config.mode {
        AuthMode::Off => {
            tracing::warn!(
                "AUTH_MODE=off: the API is open, nobody is identified and anyone can read and \
                 cancel every order. For local development only; production runs AUTH_MODE=jwt \
                 (README \"Identity and access\")"
            );
            Ok(Authenticator::Off)
        }
        AuthMode::Jwt => {
            let secret = config.hs256_secret.as_ref();
            anyhow::ensure!(
                secret.is_some() || config.jwks_url.is_some(),
                "AUTH_MODE=jwt needs JWT_HS256_SECRET or JWT_JWKS_URL"
            );
            // An identity provider signs tokens for every application it serves: without an
            // audience, a token issued for another application (and its roles) would do here.
            anyhow::ensure!(
                config.jwks_url.is_none() || config.audience.is_some(),
                "JWT_JWKS_URL needs JWT_AUDIENCE (this service's client id at the identity provider)"
            );
            if let Some(secret) = secret {
                anyhow::ensure!(
                    secret.expose_secret().len() >= MIN_HS256_SECRET_BYTES,
                    "JWT_HS256_SECRET must be at least {MIN_HS256_SECRET_BYTES} bytes"
                );
            }
            Ok(Authenticator::Jwt(Arc::new(JwtVerifier::new(
                secret,
                config.jwks_url.clone(),
                config.issuer.clone(),
                config.audience.clone(),
                config.max_ttl,
            ))))
        }
    }
}

/// Deletes expired Idempotency-Keys once an hour, until the process ends. (Expired keys are
/// also ignored when claimed, so this only keeps the table small.)
fn expire_idempotency_keys(store: Store, ttl: Duration) {
    tokio::spawn(async move {
        loop {
            match store.expire_idempotency_keys(ttl).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(deleted = n, "expired Idempotency-Keys deleted"),
                Err(e) => tracing::warn!(error = %e, "could not delete expired Idempotency-Keys"),
            }
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
    });
}

/// Serves only `/metrics`, for worker processes.
pub async fn serve_metrics(
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    orderflow_api::metrics::recorder();
    // `/live` too: a worker has no other listener for its liveness probe. It asks nothing of
    // PostgreSQL or Temporal (a worker waits out their outages; restarting it would not help).
    let app = axum::Router::new()
        .route("/metrics", axum::routing::get(orderflow_api::metrics::render))
        .route("/live", axum::routing::get(orderflow_api::live));
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await?;
    Ok(())
}

/// The `METRICS_PORT` listener, bound before the process reports itself started: a port that
/// is taken stops start-up with that message rather than leaving a worker without probes.
pub async fn metrics_listener(port: u16) -> anyhow::Result<TcpListener> {
    let listener = TcpListener::bind(("0.0.0.0", port))
        .await
        .with_context(|| format!("METRICS_PORT={port}: cannot listen"))?;
    let port = listener.local_addr()?.port();
    tracing::info!("metrics on http://0.0.0.0:{port}/metrics, liveness on /live");
    Ok(listener)
}

/// What one HTTP listener lets a client hold (`HttpConfig`): slow or idle clients must not
/// tie up the process.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Connections open at once; more wait in the kernel's accept queue.
    pub max_connections: usize,
    /// Connections one IP address may hold at once; more are closed as they are accepted.
    pub max_connections_per_client: usize,
    /// Time to send a request's headers, and how long an idle keep-alive connection stays open.
    pub header_read_timeout: Duration,
    /// Time for a whole request, body and answer included; beyond it: 503.
    pub request_timeout: Duration,
}

/// Serves the API on `listener` until `shutdown` resolves, then finishes in-flight requests.
/// Built on hyper-util rather than `axum::serve` for the limits `axum::serve` does not have:
/// a header-read timeout and a connection limit.
pub async fn serve_http(
    listener: TcpListener,
    ctx: ApiContext,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let app = orderflow_api::router_with_timeout(ctx, limits.request_timeout);
    // HTTP/1.1 only: with protocol detection, a connection that sends nothing would wait for
    // its first bytes without any timeout. (Load balancers speak HTTP/1.1 to their backends.)
    let mut http = auto::Builder::new(TokioExecutor::new()).http1_only();
    http.http1().timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout);
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let per_client = PerClient::new(limits.max_connections_per_client);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = connections.clone().acquire_owned() => permit?,
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // Out of file descriptors and the like: wait a little, as axum::serve does.
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // One client's sockets beyond its share are closed at once (the permit goes back).
        let Some(share) = per_client.admit(peer.ip()) else {
            metrics::counter!("orderflow_http_connections_refused_total", "reason" => "per_client")
                .increment(1);
            drop(stream);
            continue;
        };
        let app = app.clone();
        let service = TowerToHyperService::new(tower::service_fn(
            move |mut request: Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                app.clone().oneshot(request)
            },
        ));
        let connection = http.serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection.into_owned());
        tokio::spawn(async move {
            // A client that goes away mid-request is not the server's error.
            let _ = connection.await;
            drop((permit, share));
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// The connections each client (IP address) holds, within a cap.
#[derive(Clone)]
struct PerClient {
    cap: usize,
    open: Arc<std::sync::Mutex<HashMap<IpAddr, usize>>>,
}

/// One connection of a client; dropping it gives its place back.
struct Share {
    ip: IpAddr,
    clients: PerClient,
}

impl PerClient {
    fn new(cap: usize) -> Self {
        Self { cap, open: Arc::default() }
    }

    /// A place for one more connection from `ip`, if it has fewer than the cap. An IPv6 client
    /// is its /64 (one host is given a whole /64, and could otherwise take a share per address).
    fn admit(&self, ip: IpAddr) -> Option<Share> {
        let ip = match ip {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into()),
            },
            v4 => v4,
        };
        let mut open = self.open.lock().expect("per-client connections lock");
        let count = open.entry(ip).or_default();
        if *count >= self.cap {
            return None;
        }
        *count += 1;
        Some(Share { ip, clients: self.clone() })
    }
}

impl Drop for Share {
    fn drop(&mut self) {
        let mut open = self.clients.open.lock().expect("per-client connections lock");
        if let Some(count) = open.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
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

/// Calls `attempt` until it succeeds (backing off from 200 ms to 5 s), saying what it waits
/// for: a dependency that is still starting should delay start-up, not crash it.
pub async fn retry<T, E, F, Fut>(what: &str, attempt: F) -> T
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let backoff = ExponentialBuilder::new()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(Duration::from_secs(5))
        .without_max_times();
    match attempt.retry(backoff).notify(|e, _| tracing::warn!("waiting for {what}: {e}")).await {
        Ok(value) => value,
        Err(_) => unreachable!("retried without a limit"),
    }
}

fn identity() -> String {
    let host =
        std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_owned()).unwrap_or_default();
    format!("orderflow-{}@{host}", std::process::id())
}
