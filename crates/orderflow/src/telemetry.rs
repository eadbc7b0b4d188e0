use tracing_subscriber::EnvFilter;

/// Logs to stdout: human-readable by default, one JSON object per line with `LOG_FORMAT=json`.
/// The level comes from `RUST_LOG` (default `info`, with the Temporal core's chatter at `warn`).
pub fn init_tracing() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(
            "info,temporalio_sdk_core=warn,temporalio_client=warn,sqlx::postgres::notice=warn",
        )
    });
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false);
    let json = std::env::var("LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let _ = if json { builder.json().try_init() } else { builder.try_init() };
}
