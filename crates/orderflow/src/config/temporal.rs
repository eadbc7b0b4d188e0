//! Where Temporal is, and the task queue of this deployment.

use super::Secrets;
use clap::Args;
use secrecy::SecretString;

/// The connection comes from Temporal's standard client configuration, read by the SDK
/// (`ENVCONFIG_VARIABLES`: `TEMPORAL_ADDRESS`, `TEMPORAL_API_KEY`, `TEMPORAL_TLS_*`,
/// `TEMPORAL_PROFILE` of the TOML file `TEMPORAL_CONFIG_FILE`), as for every other Temporal
/// SDK and the CLI. The Go service's `TEMPORAL_HOST`/`TEMPORAL_PORT` still work and, when set,
/// give the address (setting them together with `TEMPORAL_ADDRESS` is refused as ambiguous).
#[derive(Debug, Clone, Args)]
pub struct TemporalConfig {
    /// Host of the Temporal frontend (default `localhost`, when `TEMPORAL_ADDRESS` is unset).
    #[arg(long, env = "TEMPORAL_HOST", value_name = "TEMPORAL_HOST")]
    pub temporal_host: Option<String>,
    /// Port of the Temporal frontend (default 7233, when `TEMPORAL_ADDRESS` is unset).
    #[arg(long, env = "TEMPORAL_PORT", value_name = "TEMPORAL_PORT")]
    pub temporal_port: Option<u16>,
    /// The namespace (else the configuration profile's, else `default`).
    #[arg(long, env = "TEMPORAL_NAMESPACE", value_name = "TEMPORAL_NAMESPACE")]
    pub namespace: Option<String>,
    /// The task queue of this deployment's orders. One database, one task queue: two
    /// deployments sharing a queue would run each other's orders.
    #[arg(
        long,
        env = "TEMPORAL_TASK_QUEUE",
        value_name = "TEMPORAL_TASK_QUEUE",
        default_value = "order-processing"
    )]
    pub task_queue: String,
    /// `TEMPORAL_API_KEY`, a secret; here so that it may also come from `TEMPORAL_API_KEY_FILE`.
    #[arg(skip)]
    pub api_key: Option<SecretString>,
}

impl TemporalConfig {
    pub fn take_secrets(&mut self, secrets: &Secrets) {
        self.api_key = secrets.get("TEMPORAL_API_KEY");
    }

    /// The Go service's `TEMPORAL_HOST`/`TEMPORAL_PORT` as an address, if either is set.
    pub fn legacy_address(&self) -> Option<String> {
        if self.temporal_host.is_none() && self.temporal_port.is_none() {
            return None;
        }
        let host = self.temporal_host.as_deref().unwrap_or("localhost");
        Some(format!("{host}:{}", self.temporal_port.unwrap_or(7233)))
    }
}

/// The variables of Temporal's standard client configuration, read by the SDK itself
/// (`temporalio_common::envconfig`), not by the flags above.
pub const ENVCONFIG_VARIABLES: [&str; 14] = [
    "TEMPORAL_ADDRESS",
    "TEMPORAL_API_KEY",
    "TEMPORAL_CONFIG_FILE",
    "TEMPORAL_PROFILE",
    "TEMPORAL_TLS",
    "TEMPORAL_TLS_CLIENT_CERT_PATH",
    "TEMPORAL_TLS_CLIENT_CERT_DATA",
    "TEMPORAL_TLS_CLIENT_KEY_PATH",
    "TEMPORAL_TLS_CLIENT_KEY_DATA",
    "TEMPORAL_TLS_SERVER_CA_CERT_PATH",
    "TEMPORAL_TLS_SERVER_CA_CERT_DATA",
    "TEMPORAL_TLS_SERVER_NAME",
    "TEMPORAL_TLS_DISABLE_HOST_VERIFICATION",
    "TEMPORAL_GRPC_META_*",
];
