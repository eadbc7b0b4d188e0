//! What every process needs: the database and the Temporal client.

use crate::config::{DatabaseConfig, TemporalConfig};
use crate::retry::retry;
use anyhow::Context;
use orderflow_domain::DatabaseId;
use orderflow_store::Store;
use temporalio_client::Client;

#[derive(Clone)]
pub struct Dependencies {
    pub store: Store,
    /// The identity of the store's database, which every order carries.
    pub database: DatabaseId,
    pub temporal: Client,
}

impl Dependencies {
    /// A pool of `pool_size` connections on a migrated database, and a Temporal client; waits
    /// for either that is still starting.
    pub async fn connect(
        database: &DatabaseConfig,
        pool_size: u32,
        temporal: &TemporalConfig,
    ) -> anyhow::Result<Self> {
        let store = connect_store(database, pool_size)?;
        migrate(&store).await?;
        let temporal = crate::temporal::connect(temporal).await?;
        let database = store.database_id().await.context("reading the database's identity")?;
        Ok(Self { store, database, temporal })
    }
}

/// A pool of `size` connections over the configured database. Lazy: connections open on first
/// use. The API and the worker each get their own (see `DatabaseConfig`).
pub fn connect_store(config: &DatabaseConfig, size: u32) -> anyhow::Result<Store> {
    Ok(Store::connect_lazy(config.connect_options()?, size))
}

/// Applies migrations, waiting for PostgreSQL to answer first (it may still be starting).
pub async fn migrate(store: &Store) -> anyhow::Result<()> {
    retry("PostgreSQL", || store.ping()).await;
    store.migrate().await.context("applying database migrations")?;
    Ok(())
}
