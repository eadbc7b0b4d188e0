use anyhow::Context;
use clap::Parser;
use orderflow::config::{
    ApiArgs, Cli, Command, ConfirmOutcomeArg, HttpConfig, MigrateArgs, PspArgs, ServeArgs,
    TokenArgs, WorkerArgs,
};
use orderflow::{
    Dependencies, Shutdown, api_context, build_worker, connect_store, connect_temporal,
    exit_after_grace, metrics_listener, migrate, run_worker, sdk_runtime, serve_http,
    serve_metrics,
};
use orderflow_api::auth::{NewToken, mint_hs256};
use secrecy::ExposeSecret;
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    orderflow::init_tracing();
    // No subcommand means `serve`, with the same flags and environment.
    let command = match Cli::parse().command {
        Some(command) => command,
        None => Cli::parse_from(["orderflow", "serve"]).command.expect("serve parses"),
    };
    let result = match command {
        Command::Serve(args) => serve(args).await,
        Command::Api(args) => api(args).await,
        Command::Worker(args) => worker(args).await,
        Command::Migrate(args) => migrate_only(args).await,
        Command::Token(args) => token(args),
        Command::Psp(args) => psp(args).await,
    };
    orderflow::flush_traces();
    result
}

/// The simulated payment provider: its ledger database (created and installed if missing), and
/// its HTTP API until shutdown.
async fn psp(args: PspArgs) -> anyhow::Result<()> {
    let options = args.connect_options()?;
    // Waits for PostgreSQL like the service does (it may still be starting).
    orderflow::retry("PostgreSQL", || orderflow_store::create_database_if_missing(&options)).await;
    let store = orderflow_store::Store::connect_lazy(options, args.database.max_connections);
    let outbox = orderflow_psp::Outbox {
        delay: args.webhook_delay,
        duplicate_rate: args.webhook_duplicate_rate,
    };
    let ledger = orderflow_psp::Ledger::new(store.pool().clone(), outbox);
    ledger.install().await.context("installing the provider's ledger")?;
    let config = orderflow_psp::PspConfig {
        decline_above: args.decline_above,
        action_required_rate: args.action_required_rate,
        outage_rate: args.outage_rate,
        confirm_delay: args.confirm_delay,
        confirm_outcome: match args.confirm_outcome {
            ConfirmOutcomeArg::Succeed => orderflow_psp::ConfirmOutcome::Succeed,
            ConfirmOutcomeArg::Fail => orderflow_psp::ConfirmOutcome::Fail,
            ConfirmOutcomeArg::Never => orderflow_psp::ConfirmOutcome::Never,
        },
        authorization_ttl: args.authorization_ttl,
    };
    let secret = args.webhook_secret.as_ref().map(|s| s.expose_secret().to_owned());
    let webhooks = orderflow_psp::Webhooks {
        url: args.webhook_url.clone(),
        secret: secret.unwrap_or_default(),
    };
    if webhooks.url.is_some() && webhooks.secret.is_empty() {
        anyhow::bail!(
            "PSP_WEBHOOK_URL is set but PAYMENT_WEBHOOK_SECRET is not: webhooks are signed"
        );
    }
    tokio::spawn(orderflow_psp::run_webhooks(ledger.clone(), webhooks));
    let address = format!("{}:{}", args.host, args.port);
    let listener = TcpListener::bind(&address)
        .await
        .with_context(|| format!("cannot listen on {address} (PSP_HOST/PSP_PORT)"))?;
    tracing::info!(%address, "simulated payment provider listening");
    axum::serve(listener, orderflow_psp::router(ledger, config))
        .with_graceful_shutdown(orderflow::shutdown_signal())
        .await?;
    Ok(())
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let deps = dependencies(&args.database, args.database.api_pool_size(), &args.temporal).await?;
    // The steps get a pool of their own: a burst of requests cannot starve them of connections.
    let steps = Dependencies {
        store: connect_store(&args.database, args.database.worker_pool_size())?,
        ..deps.clone()
    };
    let runtime = sdk_runtime()?;
    let build = || {
        let queue = &args.temporal.task_queue;
        build_worker(&runtime, &steps, queue, &args.worker, &args.simulation, &args.payments)
    };
    let listener = bind(&args.http).await?;
    let mut ctx = api_context(&deps, &args.http, &args.payments, &args.temporal.task_queue)?;
    if args.worker.deployment_version().is_some() {
        ctx.orchestrator = ctx.orchestrator.without_eager_start();
    }
    // On Ctrl-C / SIGTERM: stop accepting requests and polling for tasks; what is in flight
    // finishes, for at most the grace period.
    let shutdown = Shutdown::on_signals();
    if let Some(port) = args.metrics_port {
        tokio::spawn(serve_metrics(metrics_listener(port).await?, until_requested(&shutdown)));
    }
    let http = tokio::spawn(serve_http(
        listener,
        ctx,
        args.http.connection_limits(),
        until_requested(&shutdown),
    ));
    tracing::info!(task_queue = %args.temporal.task_queue, database = %deps.database, "worker started");
    let finished = async {
        run_worker(build, args.worker.recycle_after_steps, &shutdown).await?;
        http.await?
    };
    tokio::select! {
        result = finished => result?,
        () = shutdown.deadline(args.shutdown.grace) => exit_after_grace(args.shutdown.grace),
    }
    tracing::info!("stopped");
    Ok(())
}

async fn api(args: ApiArgs) -> anyhow::Result<()> {
    let deps = dependencies(&args.database, args.database.api_pool_size(), &args.temporal).await?;
    let listener = bind(&args.http).await?;
    let ctx = api_context(&deps, &args.http, &args.payments, &args.temporal.task_queue)?;
    let shutdown = Shutdown::on_signals();
    if let Some(port) = args.metrics_port {
        tokio::spawn(serve_metrics(metrics_listener(port).await?, until_requested(&shutdown)));
    }
    tokio::select! {
        result = serve_http(listener, ctx, args.http.connection_limits(), until_requested(&shutdown)) => result?,
        () = shutdown.deadline(args.shutdown.grace) => exit_after_grace(args.shutdown.grace),
    }
    tracing::info!("stopped");
    Ok(())
}

async fn worker(args: WorkerArgs) -> anyhow::Result<()> {
    let deps =
        dependencies(&args.database, args.database.worker_pool_size(), &args.temporal).await?;
    let runtime = sdk_runtime()?;
    let build = || {
        let queue = &args.temporal.task_queue;
        build_worker(&runtime, &deps, queue, &args.worker, &args.simulation, &args.payments)
    };
    let shutdown = Shutdown::on_signals();
    if let Some(port) = args.metrics_port {
        tokio::spawn(serve_metrics(metrics_listener(port).await?, until_requested(&shutdown)));
    }
    tracing::info!(task_queue = %args.temporal.task_queue, database = %deps.database, "worker started");
    tokio::select! {
        result = run_worker(build, args.worker.recycle_after_steps, &shutdown) => result?,
        () = shutdown.deadline(args.shutdown.grace) => exit_after_grace(args.shutdown.grace),
    }
    tracing::info!("stopped");
    Ok(())
}

/// A future for `with_graceful_shutdown`: resolves when shutdown is requested.
fn until_requested(shutdown: &Shutdown) -> impl Future<Output = ()> + Send + 'static {
    let shutdown = shutdown.clone();
    async move { shutdown.requested().await }
}

fn token(args: TokenArgs) -> anyhow::Result<()> {
    let secret = args.secret.context("set JWT_HS256_SECRET to the service's secret")?;
    let roles: Vec<&str> = args.roles.iter().map(String::as_str).collect();
    let claims = NewToken {
        iss: args.issuer,
        aud: args.audience,
        ..NewToken::new(args.sub, &roles, args.ttl)
    };
    println!("{}", mint_hs256(&secret, &claims));
    Ok(())
}

async fn migrate_only(args: MigrateArgs) -> anyhow::Result<()> {
    let options = args.database.connect_options()?;
    orderflow_store::create_database_if_missing(&options).await?;
    let store = connect_store(&args.database, 1)?;
    migrate(&store).await?;
    if args.demo_catalog {
        store.load_demo_catalog().await?;
    }
    tracing::info!("database is up to date");
    Ok(())
}

async fn dependencies(
    database: &orderflow::config::DatabaseConfig,
    pool_size: u32,
    temporal: &orderflow::config::TemporalConfig,
) -> anyhow::Result<Dependencies> {
    let store = connect_store(database, pool_size)?;
    migrate(&store).await?;
    let temporal = connect_temporal(temporal).await?;
    let database = store.database_id().await.context("reading the database's identity")?;
    Ok(Dependencies { store, database, temporal })
}

async fn bind(http: &HttpConfig) -> anyhow::Result<TcpListener> {
    let address = format!("{}:{}", http.http_host, http.http_port);
    let listener = TcpListener::bind(&address)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {address} (HTTP_HOST/HTTP_PORT): {e}"))?;
    tracing::info!("HTTP API listening on http://{address}");
    Ok(listener)
}
