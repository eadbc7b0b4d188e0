//! The connection to Temporal, and the SDK's runtime for this process's workers.

use crate::config::TemporalConfig;
use crate::retry::retry;
use secrecy::ExposeSecret;
use std::collections::HashMap;
use temporalio_client::envconfig::LoadClientConfigProfileOptions;
use temporalio_client::{Client, ClientOptions, Connection, ConnectionOptions};
use temporalio_common::envconfig::load_client_config_profile;
use temporalio_common::telemetry::TelemetryOptions;
use temporalio_sdk::Runtime;
use temporalio_sdk::opentelemetry::OpenTelemetryPlugin;
use temporalio_sdk::runtime::RuntimeOptions;

/// Connects to Temporal, waiting for the server to answer (it may still be starting).
pub async fn connect(config: &TemporalConfig) -> anyhow::Result<Client> {
    let (options, namespace) = connection_options(config, None)?;
    if config.api_key.is_some() && options.tls_options.is_some() {
        tracing::info!(
            "TLS to Temporal is on (TEMPORAL_API_KEY is set; TEMPORAL_TLS=false turns it off)"
        );
    }
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
/// variables from `environment`, else the process's, and its profile file), with the Go
/// service's `TEMPORAL_HOST`/`TEMPORAL_PORT` giving the address when set. Reads files, opens
/// nothing: configuration loading checks it too.
pub fn connection_options(
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
    if let Some(key) = &config.api_key {
        profile.api_key = Some(key.expose_secret().to_owned());
    }
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

fn identity() -> String {
    let host =
        std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_owned()).unwrap_or_default();
    format!("orderflow-{}@{host}", std::process::id())
}
