use clap::Parser;
use orderflow_testbed::chaos::{ChaosConfig, FaultPlan};
use orderflow_testbed::cluster::Tools;
use std::path::PathBuf;
use std::time::Duration;

/// Runs OrderFlow as a cluster on loopback, fires orders at it while injecting faults, then
/// checks every invariant. Exits non-zero on any violation; the seed reproduces the run.
#[derive(Parser)]
#[command(name = "orderflow-chaos", version)]
struct Args {
    #[command(flatten)]
    tools: Tools,
    /// Orders to place.
    #[arg(long, default_value_t = 2000)]
    orders: usize,
    /// Seed of every random choice (orders, faults, their timing). Default: from the clock.
    #[arg(long)]
    seed: Option<u64>,
    /// Clients placing orders at once.
    #[arg(long, default_value_t = 24)]
    concurrency: usize,
    #[arg(long, default_value_t = 2)]
    apis: usize,
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// How many of each fault, e.g. `kill-worker=4,kill-api=3,pause-worker=2`. Known faults:
    /// kill-worker, kill-api, restart-temporal, restart-postgres, terminate-backends, pause-worker,
    /// break-schema, kill-provider, pause-provider, forged-webhooks, late-webhooks,
    /// rolling-deploy, lying-provider.
    #[arg(
        long,
        default_value = "kill-worker=4,kill-api=3,restart-temporal=2,restart-postgres=1,terminate-backends=2,pause-worker=2,break-schema=2,kill-provider=2,pause-provider=2,forged-webhooks=3,late-webhooks=3,rolling-deploy=2,lying-provider=2"
    )]
    faults: FaultPlan,
    /// Port of the run's Temporal dev server. Default: a free one.
    #[arg(long)]
    temporal_port: Option<u16>,
    /// Port of the first API process, the next one listens on the port after, ... Default: a
    /// free range.
    #[arg(long)]
    http_port: Option<u16>,
    /// Where logs and the Temporal state go. Default: .data/chaos-<seed>.
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Seconds to wait for every order to finish after the faults.
    #[arg(long, default_value_t = 300)]
    quiescence_timeout: u64,
    /// Finished workflows to replay against the current workflow code.
    #[arg(long, default_value_t = 500)]
    replay_sample: usize,
    /// Also write the report to this file, headed by the command line, the commit it ran on
    /// and the date: the record a figure in the docs cites.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_millis() as u64 % 1_000_000)
    });
    let orderflow_bin = args.tools.orderflow_bin()?;
    let config = ChaosConfig {
        orderflow_bin,
        temporal_cli: args.tools.temporal_cli,
        database_url: args.tools.database_url,
        seed,
        orders: args.orders,
        concurrency: args.concurrency,
        apis: args.apis,
        workers: args.workers,
        faults: args.faults,
        temporal_port: args.temporal_port,
        http_port: args.http_port,
        work_dir: args.work_dir.unwrap_or_else(|| PathBuf::from(format!(".data/chaos-{seed}"))),
        quiescence_timeout: Duration::from_secs(args.quiescence_timeout),
        replay_sample: args.replay_sample,
    };
    let report = orderflow_testbed::chaos::run(config).await?;
    println!("{report}");
    if let Some(out) = &args.out {
        let command: Vec<String> = std::env::args().collect();
        let record = format!(
            "command              {}\ncommit               {}\ndate                 {}\n{report}\n",
            command.join(" "),
            orderflow_testbed::commit(),
            chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        );
        std::fs::write(out, record)?;
        println!("report written to {}", out.display());
    }
    if !report.passed() {
        eprintln!("chaos: invariants violated; reproduce with --seed {seed}");
        std::process::exit(1);
    }
    Ok(())
}
