//! The one assembly point: every part a process runs, built from its configuration. `main`
//! builds it for `serve`, `api` and `worker`, and the end-to-end tests build the very same.

use crate::api::{api_context, idempotency_ttl};
use crate::config::{
    ApiArgs, DatabaseConfig, HttpConfig, MetricsConfig, PaymentConfig, Problems, ServeArgs,
    ShutdownConfig, SimulationConfig, TemporalConfig, WorkerArgs, WorkerConfig,
};
use crate::dependencies::{Dependencies, connect_store};
use crate::http_server::{ConnectionLimits, metrics_listener, serve_http, serve_metrics};
use crate::shutdown::Shutdown;
use crate::worker::{OrderWorker, RegisterWorkflow, this_release};
use anyhow::Context;
use orderflow_api::ApiContext;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;

/// What one process runs: the HTTP API, the worker, or both.
#[derive(Debug, Clone)]
pub struct AppConfig {
    pub database: DatabaseConfig,
    pub temporal: TemporalConfig,
    pub payments: PaymentConfig,
    /// The HTTP API (`serve`, `api`).
    pub http: Option<HttpConfig>,
    /// The worker, and the simulated providers its steps use (`serve`, `worker`).
    pub worker: Option<(WorkerConfig, SimulationConfig)>,
    pub metrics: MetricsConfig,
    pub shutdown: ShutdownConfig,
}

impl From<ServeArgs> for AppConfig {
    fn from(args: ServeArgs) -> Self {
        Self {
            database: args.database,
            temporal: args.temporal,
            payments: args.payments,
            http: Some(args.http),
            worker: Some((args.worker, args.simulation)),
            metrics: args.metrics,
            shutdown: args.shutdown,
        }
    }
}

impl From<ApiArgs> for AppConfig {
    fn from(args: ApiArgs) -> Self {
        Self {
            database: args.database,
            temporal: args.temporal,
            payments: args.payments,
            http: Some(args.http),
            worker: None,
            metrics: args.metrics,
            shutdown: args.shutdown,
        }
    }
}

impl From<WorkerArgs> for AppConfig {
    fn from(args: WorkerArgs) -> Self {
        Self {
            database: args.database,
            temporal: args.temporal,
            payments: args.payments,
            http: None,
            worker: Some((args.worker, args.simulation)),
            metrics: args.metrics,
            shutdown: args.shutdown,
        }
    }
}

impl AppConfig {
    /// Every problem of the settings taken together (as `config::load` reports them).
    pub fn check(&self) -> Result<(), Problems> {
        let mut problems = Problems::default();
        self.database.check(&mut problems);
        if let Some(http) = &self.http {
            http.check(&mut problems);
        }
        self.payments.check(&mut problems);
        if let Err(e) = crate::temporal::connection_options(&self.temporal, None) {
            problems.push(e.to_string());
        }
        problems.into_result()
    }
}

/// A process, built and ready to run: its connections made, its listeners bound.
pub struct App {
    deps: Dependencies,
    api: Option<Api>,
    worker: Option<OrderWorker>,
    metrics: Option<TcpListener>,
    grace: Duration,
}

struct Api {
    listener: TcpListener,
    context: ApiContext,
    limits: ConnectionLimits,
    idempotency_ttl: Duration,
}

/// How [`App::run_until_stopped`] ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Stopped {
    /// Everything in flight finished.
    Cleanly,
    /// The grace period ran out with work in flight (`main` exits then).
    GraceOver,
}

impl App {
    /// Connects to PostgreSQL (migrating it) and Temporal, waiting for either that is still
    /// starting; binds the listeners; wires the API and the worker.
    pub async fn build(config: AppConfig) -> anyhow::Result<Self> {
        config.check()?;
        let pool_size = match config.http {
            Some(_) => config.database.api_pool_size(),
            None => config.database.worker_pool_size(),
        };
        let deps = Dependencies::connect(&config.database, pool_size, &config.temporal).await?;
        let task_queue = config.temporal.task_queue.clone();
        let versioned =
            config.worker.as_ref().is_some_and(|(worker, _)| worker.deployment_version().is_some());
        let api = match &config.http {
            None => None,
            Some(http) => {
                let mut context = api_context(&deps, http, &config.payments, &task_queue)?;
                // Eager start would pin new orders to this process's build.
                if versioned {
                    context.orchestrator = context.orchestrator.without_eager_start();
                }
                Some(Api {
                    listener: bind(http).await?,
                    context,
                    limits: http.connection_limits(),
                    idempotency_ttl: idempotency_ttl(&http.auth),
                })
            }
        };
        let worker = match config.worker {
            None => None,
            Some((worker, simulation)) => {
                // Beside the API, the steps get a pool of their own: a burst of requests
                // cannot starve them of connections.
                let store = match api {
                    Some(_) => connect_store(&config.database, config.database.worker_pool_size())?,
                    None => deps.store.clone(),
                };
                Some(OrderWorker {
                    deps: Dependencies { store, ..deps.clone() },
                    task_queue,
                    config: worker,
                    simulation,
                    payments: config.payments.clone(),
                    register: this_release,
                })
            }
        };
        let metrics = match config.metrics.metrics_port {
            Some(port) => Some(metrics_listener(port).await?),
            None => None,
        };
        Ok(Self { deps, api, worker, metrics, grace: config.shutdown.grace })
    }

    /// Where the API listens, if this process serves it.
    pub fn address(&self) -> Option<SocketAddr> {
        self.api.as_ref().and_then(|api| api.listener.local_addr().ok())
    }

    /// Its database and Temporal client.
    pub fn dependencies(&self) -> &Dependencies {
        &self.deps
    }

    /// The worker runs another order workflow than this build's (tests of releases).
    pub fn with_workflow(mut self, register: RegisterWorkflow) -> Self {
        if let Some(worker) = &mut self.worker {
            worker.register = register;
        }
        self
    }

    /// Serves and works until `shutdown` is requested, then lets what is in flight finish,
    /// for at most the grace period. Not `Send` with a worker (the SDK's worker is not).
    pub async fn run_until_stopped(self, shutdown: Shutdown) -> anyhow::Result<Stopped> {
        let Self { api, worker, metrics, grace, .. } = self;
        if let Some(listener) = metrics {
            tokio::spawn(serve_metrics(listener, shutdown.when_requested()));
        }
        let http = api.map(|api| {
            let store = api.context.store.clone();
            tokio::spawn(crate::jobs::expire_idempotency_keys(store, api.idempotency_ttl));
            tokio::spawn(serve_http(
                api.listener,
                api.context,
                api.limits,
                shutdown.when_requested(),
            ))
        });
        let finished = async {
            if let Some(worker) = &worker {
                worker.run(&shutdown).await?;
            }
            if let Some(http) = http {
                http.await.context("the HTTP server")??;
            }
            anyhow::Ok(())
        };
        tokio::select! {
            result = finished => result.map(|()| Stopped::Cleanly),
            () = shutdown.deadline(grace) => Ok(Stopped::GraceOver),
        }
    }
}

async fn bind(http: &HttpConfig) -> anyhow::Result<TcpListener> {
    let address = format!("{}:{}", http.http_host, http.http_port);
    let listener = TcpListener::bind(&address)
        .await
        .with_context(|| format!("cannot listen on {address} (HTTP_HOST/HTTP_PORT)"))?;
    tracing::info!("HTTP API listening on http://{}", listener.local_addr()?);
    Ok(listener)
}
