//! PostgreSQL: the schema (embedded migrations) and every read and write OrderFlow makes.
//!
//! Each write that the workflow repeats on retry is idempotent, and each one that moves stock
//! locks the order row first and then products in id order, so concurrent orders neither
//! oversell nor deadlock.

mod idempotency;
mod inventory;
mod notifications;
mod orders;
mod payments;
mod products;
mod stuck;
#[cfg(feature = "test-support")]
pub mod testing;

pub use idempotency::KeyClaim;
pub use inventory::{CancelOutcome, Closing, Confirmation, InsufficientStock};
pub use orders::{NotificationRow, OrderFilter, OrderItemRow, OrderRow, ReservationRow};
pub use payments::{EventOutcome, NewPaymentEvent, PaymentChange, PaymentEventRow, PaymentRow};
pub use products::{MAX_UNITS, NewProduct, ProductRow, Restocked};
pub use stuck::StuckStepRow;

use orderflow_domain::{DatabaseId, OrderId};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgPool};
use std::time::Duration;

/// The database of `make dev` and the test suite (scripts/bootstrap.sh; the service's own
/// POSTGRES_* defaults name the same one), used by tests and tools when `DATABASE_URL` is not
/// set.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres:password@localhost:5432/orderflow";

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Why a read or write failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The order a step names does not exist (a bug: the workflow writes it first).
    #[error("order {0} does not exist")]
    NoSuchOrder(OrderId),
    /// A row or a function's answer breaks a rule the code relies on: a bug or a manual edit.
    #[error("unexpected data in the database: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl StoreError {
    /// PostgreSQL cannot be reached right now (as opposed to a query that failed): worth
    /// retrying, and for the API a 503 rather than a 500.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            Self::Database(
                sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed
            )
        )
    }
}

/// A handle on OrderFlow's database. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: PgPool,
}

impl Store {
    /// Connects a pool. Connections are opened lazily, so this succeeds while PostgreSQL is
    /// down (the service starts and reports itself unhealthy rather than crash-looping).
    pub fn connect_lazy(options: PgConnectOptions, max_connections: u32) -> Self {
        // A process frozen or cut off mid-transaction must not hold order or product locks for
        // long: the server ends such a session (rolling it back), and a statement waits for a
        // lock at most a few seconds before the step fails and is retried.
        let options = options
            .options([("idle_in_transaction_session_timeout", "10s"), ("lock_timeout", "5s")]);
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .connect_lazy_with(options);
        Self { pool }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Applies the embedded migrations that have not run yet.
    pub async fn migrate(&self) -> std::result::Result<(), sqlx::migrate::MigrateError> {
        sqlx::migrate!("./migrations").run(&self.pool).await
    }

    /// Loads the Go service's eight demo products (leaves existing ones alone).
    pub async fn load_demo_catalog(&self) -> Result<()> {
        sqlx::raw_sql(include_str!("../seed/demo_catalog.sql")).execute(&self.pool).await?;
        Ok(())
    }

    /// This database's identity (see the migration `…_database_identity.sql`).
    pub async fn database_id(&self) -> Result<DatabaseId> {
        let id =
            sqlx::query_scalar!("SELECT id FROM database_identity").fetch_one(&self.pool).await?;
        Ok(DatabaseId::from_uuid(id))
    }

    /// `SELECT 1`, for health checks.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query!("SELECT 1 AS one").fetch_one(&self.pool).await?;
        Ok(())
    }
}

/// Creates the database named in `options` if it does not exist yet (connecting to the
/// `postgres` maintenance database to do so). Safe to run concurrently.
pub async fn create_database_if_missing(options: &PgConnectOptions) -> Result<()> {
    let name = options.get_database().unwrap_or("orderflow").to_owned();
    let mut admin = options.clone().database("postgres").connect().await?;
    let exists = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS "exists!""#,
        name
    )
    .fetch_one(&mut admin)
    .await?;
    if !exists {
        let create = format!("CREATE DATABASE \"{}\"", name.replace('"', "\"\""));
        match sqlx::raw_sql(&create).execute(&mut admin).await {
            // 42P04 duplicate_database: someone else created it meanwhile, which is fine.
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P04") => {}
            other => {
                other?;
            }
        }
    }
    Ok(admin.close().await?)
}

/// Drops the database `name` on `server` if it exists, closing its connections first
/// (PostgreSQL 13+). For test and benchmark databases; OrderFlow never drops its own.
pub async fn drop_database(server: &PgConnectOptions, name: &str) -> Result<()> {
    drop_database_unless_used(server, name, true).await
}

/// [`drop_database`]; without `close_connections`, a database still in use is left alone (an
/// error) rather than taken from whoever uses it.
pub async fn drop_database_unless_used(
    server: &PgConnectOptions,
    name: &str,
    close_connections: bool,
) -> Result<()> {
    let mut admin = server.clone().database("postgres").connect().await?;
    let force = if close_connections { " WITH (FORCE)" } else { "" };
    let drop = format!("DROP DATABASE IF EXISTS \"{}\"{force}", name.replace('"', "\"\""));
    sqlx::raw_sql(&drop).execute(&mut admin).await?;
    Ok(admin.close().await?)
}
