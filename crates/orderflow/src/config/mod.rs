//! Configuration: command-line flags, each also read from the environment variable of the same
//! meaning (the Go service's names where it had one), each declared once, in the group it
//! belongs to. [`load`] takes three explicit steps and changes nothing: the flags and variables
//! are parsed, the secrets read ([`Secrets`]: the environment or `<NAME>_FILE`), and the whole
//! is checked, every problem reported at once with its variable's name ([`Problems`]).
//! `main` prints them and exits; nothing here does.

mod database;
mod http;
mod parse;
mod payments;
mod problems;
mod psp;
mod secrets;
mod temporal;
mod worker;

pub use database::DatabaseConfig;
pub use http::{AuthConfig, AuthMode, HttpConfig, MIN_HS256_SECRET_BYTES, TokenClaims};
pub use payments::{MIN_WEBHOOK_SECRET_BYTES, PaymentConfig};
pub use problems::Problems;
pub use psp::{ConfirmOutcomeArg, PspArgs};
pub use secrets::{SECRET_VARIABLES, Secrets, read_by};
pub use temporal::{ENVCONFIG_VARIABLES, TemporalConfig};
pub use worker::{DeclineRule, MetricsConfig, ShutdownConfig, SimulationConfig, WorkerConfig};

use clap::error::ErrorKind;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use secrecy::SecretString;
use std::ffi::OsString;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(
    name = "orderflow",
    version,
    about = "Durable order processing on Temporal and PostgreSQL"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// HTTP API and Temporal worker in one process (the default).
    Serve(ServeArgs),
    /// Only the HTTP API (scale it apart from the workers).
    Api(ApiArgs),
    /// Only the Temporal worker that runs the order workflow and its activities.
    Worker(WorkerArgs),
    /// Create the database if missing and apply migrations, then exit.
    Migrate(MigrateArgs),
    /// Print an HS256 token signed with JWT_HS256_SECRET, for development, tests and the
    /// README's examples (production tokens come from the identity provider).
    Token(TokenArgs),
    /// The simulated payment service provider, an HTTP service of its own (docs/payments.md).
    Psp(PspArgs),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub database: DatabaseConfig,
    #[command(flatten)]
    pub temporal: TemporalConfig,
    #[command(flatten)]
    pub http: HttpConfig,
    #[command(flatten)]
    pub worker: WorkerConfig,
    #[command(flatten)]
    pub simulation: SimulationConfig,
    #[command(flatten)]
    pub payments: PaymentConfig,
    #[command(flatten)]
    pub metrics: MetricsConfig,
    #[command(flatten)]
    pub shutdown: ShutdownConfig,
}

#[derive(Debug, Args)]
pub struct ApiArgs {
    #[command(flatten)]
    pub database: DatabaseConfig,
    #[command(flatten)]
    pub temporal: TemporalConfig,
    #[command(flatten)]
    pub http: HttpConfig,
    #[command(flatten)]
    pub payments: PaymentConfig,
    #[command(flatten)]
    pub metrics: MetricsConfig,
    #[command(flatten)]
    pub shutdown: ShutdownConfig,
}

#[derive(Debug, Args)]
pub struct WorkerArgs {
    #[command(flatten)]
    pub database: DatabaseConfig,
    #[command(flatten)]
    pub temporal: TemporalConfig,
    #[command(flatten)]
    pub worker: WorkerConfig,
    #[command(flatten)]
    pub simulation: SimulationConfig,
    #[command(flatten)]
    pub payments: PaymentConfig,
    #[command(flatten)]
    pub metrics: MetricsConfig,
    #[command(flatten)]
    pub shutdown: ShutdownConfig,
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    #[command(flatten)]
    pub database: DatabaseConfig,
    /// Also load the Go service's eight demo products (existing ones are left alone).
    #[arg(long)]
    pub demo_catalog: bool,
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The customer id (or the operator's name).
    #[arg(long)]
    pub sub: String,
    /// A role to grant, e.g. `operator`; repeat for several.
    #[arg(long = "role")]
    pub roles: Vec<String>,
    /// How long the token is valid: seconds, or a number with s, m, h or d.
    #[arg(long, default_value = "1h", value_parser = parse::ttl)]
    pub ttl: Duration,
    #[command(flatten)]
    pub claims: TokenClaims,
    /// `JWT_HS256_SECRET`, a secret: the service's.
    #[arg(skip)]
    pub secret: Option<SecretString>,
}

/// The OpenTelemetry variables the trace exporter reads (docs/operations.md, "Traces"), by the
/// SDKs' standard names.
pub const OTEL_VARIABLES: [&str; 12] = [
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TIMEOUT",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
    "OTEL_SDK_DISABLED",
    "OTEL_TRACES_EXPORTER",
];

impl Command {
    /// Hands each part of the configuration the secrets it uses.
    pub fn take_secrets(&mut self, secrets: &Secrets) {
        match self {
            Command::Serve(args) => {
                args.database.take_secrets(secrets);
                args.temporal.take_secrets(secrets);
                args.http.take_secrets(secrets);
                args.payments.take_secrets(secrets);
            }
            Command::Api(args) => {
                args.database.take_secrets(secrets);
                args.temporal.take_secrets(secrets);
                args.http.take_secrets(secrets);
                args.payments.take_secrets(secrets);
            }
            Command::Worker(args) => {
                args.database.take_secrets(secrets);
                args.temporal.take_secrets(secrets);
                args.payments.take_secrets(secrets);
            }
            Command::Migrate(args) => args.database.take_secrets(secrets),
            Command::Token(args) => args.secret = secrets.get("JWT_HS256_SECRET"),
            Command::Psp(args) => args.take_secrets(secrets),
        }
    }

    /// What is wrong with the settings taken together (each value alone was checked when it
    /// was parsed).
    pub fn check(&self, problems: &mut Problems) {
        match self {
            Command::Serve(args) => {
                args.database.check(problems);
                args.http.check(problems);
                args.payments.check(problems);
                check_temporal(&args.temporal, problems);
            }
            Command::Api(args) => {
                args.database.check(problems);
                args.http.check(problems);
                args.payments.check(problems);
                check_temporal(&args.temporal, problems);
            }
            Command::Worker(args) => {
                args.database.check(problems);
                args.payments.check(problems);
                check_temporal(&args.temporal, problems);
            }
            Command::Migrate(args) => args.database.check(problems),
            Command::Token(args) => problems.require(args.secret.is_some(), || {
                "JWT_HS256_SECRET is not set: set it to the service's secret (`make token` \
                 reads the development one)"
                    .into()
            }),
            Command::Psp(args) => args.check(problems),
        }
    }
}

/// Temporal's client configuration (the SDK's variables and profile file, which it reads).
fn check_temporal(temporal: &TemporalConfig, problems: &mut Problems) {
    if let Err(e) = crate::temporal::connection_options(temporal, None) {
        problems.push(e.to_string());
    }
}

/// Why the configuration cannot be loaded.
#[derive(Debug)]
pub enum LoadError {
    /// The command line itself: unknown flags, `--help`, `--version` (clap prints it).
    Usage(clap::Error),
    /// Everything wrong with the settings.
    Problems(Problems),
}

/// The command to run, from this process's arguments and environment: parsed, its secrets
/// read, and checked as a whole.
pub fn load() -> Result<Command, LoadError> {
    load_from(std::env::args_os().collect())
}

/// [`load`] with these arguments (the environment is still the process's).
pub fn load_from(args: Vec<OsString>) -> Result<Command, LoadError> {
    let mut problems = Problems::default();
    // Every variable's value first: clap would stop at the first bad one.
    problems.extend(environment_problems(&subcommand_of(&args), |name| std::env::var_os(name)));
    let (secrets, unreadable) = Secrets::from_env(&subcommand_of(&args));
    problems.extend(unreadable.iter().map(str::to_owned));
    if !problems.is_empty() {
        return Err(LoadError::Problems(problems));
    }
    let mut command = parse(&args).map_err(LoadError::Usage)?;
    command.take_secrets(&secrets);
    command.check(&mut problems);
    problems.into_result().map(|()| command).map_err(LoadError::Problems)
}

/// The command line's definition: the derived one, with each setting's flag named after its
/// environment variable (`AUTH_MODE` is `--auth-mode`, `PAYMENT_DELAY_MS` is
/// `--payment-delay-ms`), so that a setting has one name in both places.
pub fn cli() -> clap::Command {
    Cli::command().mut_subcommands(|command| {
        command.mut_args(|arg| match arg.get_env().map(|e| e.to_string_lossy().into_owned()) {
            Some(env) if arg.get_long().is_some() => arg.long(env.to_lowercase().replace('_', "-")),
            _ => arg,
        })
    })
}

/// Parses `args` with [`cli`].
pub fn try_parse_from<I, T>(args: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    Cli::from_arg_matches(&cli().try_get_matches_from(args)?)
}

/// The subcommand of the arguments; none means `serve`, with the same flags and environment.
fn parse(args: &[OsString]) -> Result<Command, clap::Error> {
    match try_parse_from(args)?.command {
        Some(command) => Ok(command),
        None => {
            let program = args.first().cloned().unwrap_or_else(|| "orderflow".into());
            Ok(try_parse_from([program, "serve".into()])?.command.expect("serve parses"))
        }
    }
}

fn subcommand_of(args: &[OsString]) -> String {
    let named = args
        .get(1)
        .and_then(|a| a.to_str())
        .filter(|name| cli().get_subcommands().any(|command| command.get_name() == *name));
    named.unwrap_or("serve").to_owned()
}

/// The variables of `subcommand` whose values its flags would refuse, each with the reason.
pub fn environment_problems(
    subcommand: &str,
    variable: impl Fn(&str) -> Option<OsString>,
) -> Vec<String> {
    let Some(command) = cli().find_subcommand(subcommand).cloned() else {
        return Vec::new();
    };
    // The subcommand without its variables, so that each value is parsed alone as its flag.
    let bare = command.clone().mut_args(|arg| arg.env(None));
    let mut problems = Vec::new();
    for arg in command.get_arguments() {
        let (Some(name), Some(long)) = (arg.get_env(), arg.get_long()) else { continue };
        let name = name.to_string_lossy();
        let Some(value) = variable(&name) else { continue };
        // `--flag=value`, so that a value starting with `-` is not taken for a flag.
        let mut flag = OsString::from(format!("--{long}="));
        flag.push(&value);
        let Err(e) = bare.clone().try_get_matches_from([OsString::from(subcommand), flag]) else {
            continue;
        };
        if matches!(e.kind(), ErrorKind::ValueValidation | ErrorKind::InvalidValue) {
            problems.push(format!("{name}={}: {}", value.to_string_lossy(), reason(&e)));
        }
    }
    problems
}

/// What clap says is wrong with a value, without its framing.
fn reason(error: &clap::Error) -> String {
    if let Some(source) = std::error::Error::source(error) {
        return source.to_string();
    }
    let text = error.to_string();
    let first = text.lines().next().unwrap_or_default().trim_start_matches("error: ");
    // "invalid value 'x' for '--flag <NAME>'": the variable is named already.
    let first = match first.split_once(" for '--") {
        Some((what, rest)) => format!("{what}{}", rest.split_once('\'').map_or("", |(_, r)| r)),
        None => first.to_owned(),
    };
    let possible = text.lines().find(|line| line.contains("possible values"));
    match possible {
        Some(values) => format!("{first} {}", values.trim()),
        None => first,
    }
}

/// A group of settings at their defaults, as declared on the flags (the one place where
/// defaults live); neither the environment nor the command line is read, and secrets are
/// unset.
pub fn defaults<T: Args + FromArgMatches>() -> T {
    let command = T::augment_args(clap::Command::new("defaults")).mut_args(|arg| arg.env(None));
    let matches =
        command.try_get_matches_from(["defaults"]).expect("every setting has a valid default");
    T::from_arg_matches(&matches).expect("the defaults form a valid configuration")
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::postgres::PgConnectOptions;
    use std::collections::HashMap;
    use std::str::FromStr;

    #[test]
    fn bad_values_are_refused_with_the_variable_named() {
        let err = try_parse_from(["orderflow", "serve", "--payment-delay-ms", "fast"]).unwrap_err();
        assert!(err.to_string().contains("PAYMENT_DELAY_MS"), "{err}");
        let err = try_parse_from(["orderflow", "worker", "--payment-transient-failure-rate", "2"])
            .unwrap_err();
        assert!(err.to_string().contains("PAYMENT_TRANSIENT_FAILURE_RATE"), "{err}");
        let err = try_parse_from(["orderflow", "serve", "--payment-decline-above=-5"]).unwrap_err();
        assert!(err.to_string().contains("PAYMENT_DECLINE_ABOVE"), "{err}");
        let err = try_parse_from(["orderflow", "serve", "--http-port", "99999"]).unwrap_err();
        assert!(err.to_string().contains("HTTP_PORT"), "{err}");
    }

    #[test]
    fn every_bad_variable_is_reported_at_once() {
        let env = HashMap::from([
            ("PAYMENT_DELAY_MS", "fast"),
            ("HTTP_PORT", "99999"),
            ("AUTH_MODE", "maybe"),
            ("EAGER_WORKFLOW_START", "sometimes"),
            ("MAX_ORDERS_IN_FLIGHT", "0"),
            ("TEMPORAL_TASK_QUEUE", "fine"),
            ("TEMPORAL_WORKER_BUILD_ID", "v2"),
        ]);
        let problems =
            environment_problems("serve", |name| env.get(name).map(|v| OsString::from(*v)));
        let named: Vec<&str> = problems.iter().map(|p| p.split('=').next().unwrap()).collect();
        assert_eq!(
            named,
            [
                "HTTP_PORT",
                "AUTH_MODE",
                "MAX_ORDERS_IN_FLIGHT",
                "EAGER_WORKFLOW_START",
                "PAYMENT_DELAY_MS"
            ],
            "{problems:#?}"
        );
        assert!(problems[4].contains("must be whole milliseconds"), "{}", problems[4]);
        assert!(problems[1].contains("off") && problems[1].contains("jwt"), "{}", problems[1]);
    }

    #[test]
    fn settings_that_disagree_are_all_reported() {
        let mut serve = Command::Serve(ServeArgs {
            database: defaults(),
            temporal: defaults(),
            http: defaults(),
            worker: defaults(),
            simulation: defaults(),
            payments: defaults(),
            metrics: defaults(),
            shutdown: defaults(),
        });
        let env = HashMap::from([
            ("ADMIN_API_KEY", "short"),
            ("JWT_HS256_SECRET", "also-short"),
            ("PAYMENT_WEBHOOK_SECRET", "short-too"),
            ("DATABASE_URL", "mysql://nope"),
        ]);
        let (secrets, _) = Secrets::read(
            "serve",
            |name| env.get(name).map(|v| (*v).to_owned()),
            |_| unreachable!(),
        );
        if let Command::Serve(args) = &mut serve {
            args.http.auth.mode = AuthMode::Jwt;
        }
        serve.take_secrets(&secrets);
        let mut problems = Problems::default();
        serve.check(&mut problems);
        let problems: Vec<&str> = problems.iter().collect();
        for variable in [
            "DATABASE_URL",
            "ADMIN_API_KEY",
            "JWT_HS256_SECRET",
            "PAYMENT_WEBHOOK_SECRET must be at least",
            "PAYMENT_WEBHOOK_SECRET is set but PAYMENT_PROVIDER_URL",
        ] {
            assert!(problems.iter().any(|p| p.starts_with(variable)), "{variable}: {problems:#?}");
        }
    }

    #[test]
    fn secrets_are_never_command_line_flags() {
        for flag in [
            "--admin-api-key",
            "--database-url",
            "--postgres-password",
            "--jwt-hs256-secret",
            "--payment-webhook-secret",
            "--temporal-api-key",
        ] {
            let err = try_parse_from(["orderflow", "serve", flag, "s3cret-s3cret-s3cret"]);
            assert!(err.is_err(), "{flag} is accepted as a flag");
        }
        assert!(
            try_parse_from(["orderflow", "token", "--sub", "c", "--jwt-hs256-secret", "x"])
                .is_err()
        );
    }

    #[test]
    fn each_settings_flag_is_named_after_its_variable() {
        let Some(Command::Serve(args)) =
            try_parse_from(["orderflow", "serve", "--auth-mode", "jwt", "--payment-delay-ms", "7"])
                .unwrap()
                .command
        else {
            panic!("serve expected")
        };
        assert_eq!(args.http.auth.mode, AuthMode::Jwt);
        assert_eq!(args.simulation.payment_delay, Duration::from_millis(7));
        for command in cli().get_subcommands() {
            for arg in command.get_arguments() {
                if let (Some(env), Some(long)) = (arg.get_env(), arg.get_long()) {
                    let env = env.to_string_lossy().to_lowercase().replace('_', "-");
                    assert_eq!(long, env, "in {}", command.get_name());
                }
            }
        }
    }

    #[test]
    fn each_variable_is_declared_once_per_subcommand() {
        for command in cli().get_subcommands() {
            let mut seen = std::collections::BTreeSet::new();
            for arg in command.get_arguments() {
                if let Some(name) = arg.get_env() {
                    assert!(seen.insert(name), "{name:?} twice in {}", command.get_name());
                }
            }
        }
    }

    #[test]
    fn defaults_come_from_the_flags_declarations() {
        let worker = WorkerConfig::default();
        assert_eq!((worker.workflow_slots, worker.activity_slots), (1000, 100));
        assert_eq!(SimulationConfig::default().decline.above.to_string(), "10000.00");
        let http = HttpConfig::default();
        assert_eq!(http.max_orders_in_flight, orderflow_api::DEFAULT_MAX_ORDERS_IN_FLIGHT);
        assert_eq!(http.workflow_task_timeout, orderflow_api::DEFAULT_WORKFLOW_TASK_TIMEOUT);
        assert_eq!(http.admission_lease, orderflow_api::DEFAULT_ADMISSION_LEASE);
    }

    #[test]
    fn defaults_match_the_original_service() {
        let Some(Command::Serve(args)) = try_parse_from(["orderflow", "serve"]).unwrap().command
        else {
            panic!("serve expected")
        };
        // Only values the test command does not set in the environment.
        assert_eq!(args.http.http_port, 8080);
        assert_eq!(args.temporal.task_queue, "order-processing");
        assert_eq!(args.simulation.decline.above.to_string(), "10000.00");
    }

    #[test]
    fn the_default_database_is_the_one_tests_and_tools_use() {
        let database: DatabaseConfig = defaults();
        let ours = database.connect_options().unwrap();
        let theirs = PgConnectOptions::from_str(orderflow_store::DEFAULT_DATABASE_URL).unwrap();
        assert_eq!(
            (ours.get_host(), ours.get_port(), ours.get_database(), ours.get_username()),
            (theirs.get_host(), theirs.get_port(), theirs.get_database(), theirs.get_username())
        );
    }
}
