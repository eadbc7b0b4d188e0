//! Fresh databases for tests: each test gets its own, migrated, with the demo catalog, so
//! tests run in parallel without seeing each other's orders or stock. A database is dropped
//! when its test is done with it.

use crate::{DEFAULT_DATABASE_URL, Store};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};
use std::str::FromStr;
use std::time::Duration;
use tokio::sync::OnceCell;

const PREFIX: &str = "orderflow_test_";

/// How long a test waits for its database to be dropped (a server that is gone must not hang
/// the suite; a database left behind is dropped by the next run).
const DROP_WITHIN: Duration = Duration::from_secs(10);

/// The server to create test databases on: `DATABASE_URL` (as `make test` sets it), else
/// [`DEFAULT_DATABASE_URL`].
pub fn server_from_env() -> PgConnectOptions {
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_DATABASE_URL.into());
    PgConnectOptions::from_str(&url).expect("DATABASE_URL is a valid PostgreSQL URL")
}

/// A test's own database; dropped (its connections closed by force) when this is dropped.
pub struct TestDatabase {
    pub store: Store,
    pub options: PgConnectOptions,
}

impl std::ops::Deref for TestDatabase {
    type Target = Store;

    fn deref(&self) -> &Store {
        &self.store
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some(name) = self.options.get_database().map(str::to_owned) else { return };
        let server = self.options.clone();
        // Drop runs inside the test's runtime, which cannot be blocked on; a thread of its own
        // with a runtime of its own can, and the test waits for it so nothing is left behind.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
            let drop = drop_database(&server, &name, true);
            runtime.map(|rt| rt.block_on(async { tokio::time::timeout(DROP_WITHIN, drop).await }))
        });
        let _ = dropped.join();
    }
}

/// Creates a new database on `server`, migrates it and loads the demo catalog.
pub async fn fresh_database(server: &PgConnectOptions) -> TestDatabase {
    static SWEPT: OnceCell<()> = OnceCell::const_new();
    SWEPT.get_or_init(|| drop_leftovers(server)).await;

    let name = format!("{PREFIX}{}", uuid::Uuid::new_v4().simple());
    let options = server.clone().database(&name);
    crate::create_database_if_missing(&options).await.expect("create a test database");
    let store = Store::connect_lazy(options.clone(), 10);
    store.migrate().await.expect("migrate the test database");
    store.load_demo_catalog().await.expect("load the demo catalog");
    TestDatabase { store, options }
}

/// Drops the test databases that runs killed before they could clean up. One still in use
/// (another test process running now) refuses to be dropped and is left alone.
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
    let _ = admin.close().await;
    for name in names {
        drop_database(server, &name, false).await;
    }
}

/// Drops `name`, best effort (a server that is gone is the next run's sweep's business).
async fn drop_database(server: &PgConnectOptions, name: &str, force: bool) {
    let _ = crate::drop_database_unless_used(server, name, force).await;
}
