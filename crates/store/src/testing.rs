//! Fresh databases for tests: each test gets its own, migrated, with the demo catalog, so
//! tests run in parallel without seeing each other's orders or stock.

use crate::Store;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};
use std::str::FromStr;
use tokio::sync::OnceCell;

const PREFIX: &str = "orderflow_test_";

/// The server to create test databases on: `DATABASE_URL` (as `make test` sets it), else the
/// defaults of the POSTGRES_* variables.
pub fn server_from_env() -> PgConnectOptions {
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres:password@localhost:5432/orderflow".into());
    PgConnectOptions::from_str(&url).expect("DATABASE_URL is a valid PostgreSQL URL")
}

/// Creates a new database on `server`, migrates it and loads the demo catalog.
pub async fn fresh_database(server: &PgConnectOptions) -> (Store, PgConnectOptions) {
    static SWEPT: OnceCell<()> = OnceCell::const_new();
    SWEPT.get_or_init(|| drop_leftovers(server)).await;

    let name = format!("{PREFIX}{}", uuid::Uuid::new_v4().simple());
    let options = server.clone().database(&name);
    crate::create_database_if_missing(&options).await.expect("create a test database");
    let store = Store::connect_lazy(options.clone(), 10);
    store.migrate().await.expect("migrate the test database");
    store.load_demo_catalog().await.expect("load the demo catalog");
    (store, options)
}

/// Drops the test databases of earlier runs. One still in use (another test process) refuses
/// to be dropped and is left alone.
async fn drop_leftovers(server: &PgConnectOptions) {
    let Ok(mut admin) = server.clone().database("postgres").connect().await else {
        return;
    };
    let names: Vec<String> =
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE $1")
            .bind(format!("{PREFIX}%"))
            .fetch_all(&mut admin)
            .await
            .unwrap_or_default();
    for name in names {
        let _ =
            sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS \"{name}\"")).execute(&mut admin).await;
    }
    let _ = admin.close().await;
}
