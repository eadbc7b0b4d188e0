use anyhow::Context;
use orderflow::config::{Command, ConfirmOutcomeArg, LoadError, MigrateArgs, PspArgs, TokenArgs};
use orderflow::shutdown::exit_after_grace;
use orderflow::{App, AppConfig, Shutdown, Stopped, connect_store, migrate};
use orderflow_api::auth::{NewToken, mint_hs256};
use secrecy::ExposeSecret;
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    orderflow::init_tracing();
    let command = match orderflow::config::load() {
        Ok(command) => command,
        Err(LoadError::Usage(e)) => e.exit(),
        Err(LoadError::Problems(problems)) => {
            eprintln!("error: {problems}");
            std::process::exit(2)
        }
    };
    let result = match command {
        Command::Serve(args) => run(args.into()).await,
        Command::Api(args) => run(args.into()).await,
        Command::Worker(args) => run(args.into()).await,
        Command::Migrate(args) => migrate_only(args).await,
        Command::Token(args) => token(args),
        Command::Psp(args) => psp(args).await,
    };
    orderflow::flush_traces();
    result
}

/// `serve`, `api` or `worker`: the app until SIGTERM or Ctrl-C, then what is in flight
/// finishes, for at most the grace period.
async fn run(config: AppConfig) -> anyhow::Result<()> {
    let grace = config.shutdown.grace;
    let app = App::build(config).await?;
    // Listened for once started: a process still waiting for its dependencies ends at once.
    let shutdown = Shutdown::on_signals();
    if app.run_until_stopped(shutdown).await? == Stopped::GraceOver {
        exit_after_grace(grace);
    }
    tracing::info!("stopped");
    Ok(())
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
        decline_above: args.decline.above,
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
    tokio::spawn(orderflow_psp::run_webhooks(ledger.clone(), webhooks));
    let address = format!("{}:{}", args.host, args.port);
    let listener = TcpListener::bind(&address)
        .await
        .with_context(|| format!("cannot listen on {address} (PSP_HOST/PSP_PORT)"))?;
    tracing::info!(%address, "simulated payment provider listening");
    axum::serve(listener, orderflow_psp::router(ledger, config))
        .with_graceful_shutdown(orderflow::shutdown::signal())
        .await?;
    Ok(())
}

fn token(args: TokenArgs) -> anyhow::Result<()> {
    let secret = args.secret.context("JWT_HS256_SECRET is not set")?;
    let roles: Vec<&str> = args.roles.iter().map(String::as_str).collect();
    let claims = NewToken {
        iss: args.claims.issuer,
        aud: args.claims.audience,
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
