//! Where OrderFlow's data is (`DATABASE_URL`, or the Go service's `POSTGRES_*` variables).

use super::{Problems, Secrets};
use clap::Args;
use secrecy::{ExposeSecret, SecretString};
use sqlx::postgres::PgConnectOptions;
use std::str::FromStr;

#[derive(Debug, Clone, Args)]
pub struct DatabaseConfig {
    /// `DATABASE_URL`, a secret (it holds a password): the whole connection URL; when set, it
    /// wins over the POSTGRES_* variables.
    #[arg(skip)]
    pub database_url: Option<SecretString>,
    /// PostgreSQL's host (without DATABASE_URL).
    #[arg(long, env = "POSTGRES_HOST", value_name = "POSTGRES_HOST", default_value = "localhost")]
    pub postgres_host: String,
    /// PostgreSQL's port.
    #[arg(long, env = "POSTGRES_PORT", value_name = "POSTGRES_PORT", default_value_t = 5432)]
    pub postgres_port: u16,
    /// The database; created by `orderflow migrate` if missing.
    #[arg(long, env = "POSTGRES_DB", value_name = "POSTGRES_DB", default_value = "orderflow")]
    pub postgres_db: String,
    /// PostgreSQL's user.
    #[arg(long, env = "POSTGRES_USER", value_name = "POSTGRES_USER", default_value = "postgres")]
    pub postgres_user: String,
    /// `POSTGRES_PASSWORD`, a secret; unset: `password`, the Go service's development default.
    #[arg(skip)]
    pub postgres_password: Option<SecretString>,
    /// Connections of each pool of this process, unless set per pool below.
    #[arg(
        long,
        env = "DATABASE_MAX_CONNECTIONS",
        value_name = "DATABASE_MAX_CONNECTIONS",
        default_value_t = 10,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub max_connections: u32,
    /// Connections of the HTTP API's pool (reads, order admission).
    #[arg(long, env = "API_DATABASE_MAX_CONNECTIONS", value_name = "API_DATABASE_MAX_CONNECTIONS", value_parser = clap::value_parser!(u32).range(1..))]
    pub api_max_connections: Option<u32>,
    /// Connections of the worker's pool (the steps). Separate from the API's, so that a burst
    /// of requests cannot starve the steps of connections, nor a burst of steps the reads.
    #[arg(long, env = "WORKER_DATABASE_MAX_CONNECTIONS", value_name = "WORKER_DATABASE_MAX_CONNECTIONS", value_parser = clap::value_parser!(u32).range(1..))]
    pub worker_max_connections: Option<u32>,
}

impl DatabaseConfig {
    pub fn take_secrets(&mut self, secrets: &Secrets) {
        self.database_url = secrets.get("DATABASE_URL");
        self.postgres_password = secrets.get("POSTGRES_PASSWORD");
    }

    pub fn check(&self, problems: &mut Problems) {
        if let Err(e) = self.connect_options() {
            problems.push(e.to_string());
        }
    }

    pub fn api_pool_size(&self) -> u32 {
        self.api_max_connections.unwrap_or(self.max_connections)
    }

    pub fn worker_pool_size(&self) -> u32 {
        self.worker_max_connections.unwrap_or(self.max_connections)
    }

    pub fn connect_options(&self) -> anyhow::Result<PgConnectOptions> {
        match &self.database_url {
            Some(url) => {
                let url = url.expose_secret();
                // sqlx reads any scheme as PostgreSQL's; another database's URL is a mistake.
                anyhow::ensure!(
                    url.starts_with("postgres://") || url.starts_with("postgresql://"),
                    "DATABASE_URL is not a PostgreSQL URL (postgres://user:password@host:port/db)"
                );
                PgConnectOptions::from_str(url)
                    .map_err(|e| anyhow::anyhow!("DATABASE_URL is not a valid PostgreSQL URL: {e}"))
            }
            None => Ok(PgConnectOptions::new()
                .host(&self.postgres_host)
                .port(self.postgres_port)
                .database(&self.postgres_db)
                .username(&self.postgres_user)
                .password(
                    self.postgres_password.as_ref().map_or("password", |p| p.expose_secret()),
                )),
        }
    }
}
