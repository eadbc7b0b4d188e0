use clap::Parser;
use orderflow_testbed::bench::{BenchConfig, baseline::Shape};
use orderflow_testbed::cluster::Tools;
use std::path::PathBuf;
use std::time::Duration;

/// Measures OrderFlow over HTTP (`orderflow serve`, own Temporal dev server, fresh database)
/// next to the engine baseline, and writes JSON + SVG results.
#[derive(Parser)]
// A later option wins over an earlier one, so that `make soak ARGS="--soak-minutes 120"` can
// override the Makefile's own.
#[command(name = "orderflow-bench", version, args_override_self = true)]
struct Args {
    #[command(flatten)]
    tools: Tools,
    /// Seconds per phase.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Orders (or baseline workflows) in flight in the saturated phases.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Open-loop rates, as fractions of the saturated rate.
    #[arg(long, value_delimiter = ',', default_value = "0.25,0.5,0.75,0.9")]
    sweep: Vec<f64>,
    /// Connections reading the status endpoint.
    #[arg(long, default_value_t = 32)]
    status_connections: usize,
    /// Sockets one address holds open without finishing a request (slowloris) while the
    /// status reads run a second time (0: no second run).
    #[arg(long, default_value_t = 3000)]
    slow_sockets: usize,
    /// Seconds of the overload phase (open loop at twice the saturated rate).
    #[arg(long, default_value_t = 60)]
    overload_seconds: u64,
    /// Orders sent at once in the burst phase.
    #[arg(long, default_value_t = 1000)]
    burst: usize,
    /// Instead of the phases: a 15 s saturation, then this many minutes at half that rate,
    /// sampled every minute (memory, file descriptors, connections, Temporal CPU).
    #[arg(long)]
    soak_minutes: Option<u32>,
    /// Orders parked waiting for their customers' confirmation in the payment phases, then
    /// confirmed (0: skip the payment phases).
    #[arg(long, default_value_t = 10_000)]
    parked: usize,
    /// `temporal server start-dev` SQLite pragmas, e.g. `journal_mode=WAL,synchronous=NORMAL`.
    #[arg(long, value_delimiter = ',', default_value = "journal_mode=WAL,synchronous=NORMAL")]
    sqlite_pragma: Vec<String>,
    /// Run the baseline's steps as regular (not local) activities.
    #[arg(long)]
    baseline_regular_activities: bool,
    /// Start baseline workflows without eager start.
    #[arg(long)]
    baseline_no_eager: bool,
    /// `KEY=VALUE` environment for the `orderflow serve` process (repeatable).
    #[arg(long = "service-env", value_parser = parse_env)]
    service_env: Vec<(String, String)>,
    /// Port of the run's Temporal dev server. Default: a free one.
    #[arg(long)]
    temporal_port: Option<u16>,
    /// Port of `orderflow serve`. Default: a free one.
    #[arg(long)]
    http_port: Option<u16>,
    /// Results go to <out>.json and <out>.svg.
    #[arg(long, default_value = "bench-results/latest")]
    out: PathBuf,
    /// A name for this configuration in the results.
    #[arg(long, default_value = "default")]
    label: String,
}

fn parse_env(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("{text:?} is not KEY=VALUE"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let orderflow_bin = args.tools.orderflow_bin()?;
    let config = BenchConfig {
        orderflow_bin,
        temporal_cli: args.tools.temporal_cli,
        database_url: args.tools.database_url,
        temporal_port: args.temporal_port,
        http_port: args.http_port,
        temporal_args: args
            .sqlite_pragma
            .iter()
            .flat_map(|p| ["--sqlite-pragma".to_owned(), p.clone()])
            .collect(),
        service_env: args.service_env,
        baseline: Shape {
            local_activities: !args.baseline_regular_activities,
            eager_start: !args.baseline_no_eager,
        },
        phase: Duration::from_secs(args.seconds),
        concurrency: args.concurrency,
        sweep: args.sweep,
        status_connections: args.status_connections,
        slow_sockets: args.slow_sockets,
        overload: Duration::from_secs(args.overload_seconds),
        burst: args.burst,
        soak_minutes: args.soak_minutes,
        parked: args.parked,
        work_dir: PathBuf::from(".data/bench"),
        label: args.label,
    };
    let report = orderflow_testbed::bench::run(config).await?;
    report.save(&args.out)?;
    println!("{report}");
    let json = args.out.with_extension("json");
    if report.soak.is_empty() {
        let svg = args.out.with_extension("svg");
        println!("results: {} and {}", json.display(), svg.display());
    } else {
        println!("results: {}", json.display());
    }
    Ok(())
}
