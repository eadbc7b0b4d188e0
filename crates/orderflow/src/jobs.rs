//! Background jobs of the API process.

use orderflow_store::Store;
use std::time::Duration;

/// Deletes expired Idempotency-Keys once an hour, for as long as it is polled. (Expired keys
/// are also ignored when claimed, so this only keeps the table small.)
pub async fn expire_idempotency_keys(store: Store, ttl: Duration) {
    loop {
        match store.expire_idempotency_keys(ttl).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, "expired Idempotency-Keys deleted"),
            Err(e) => tracing::warn!(error = %e, "could not delete expired Idempotency-Keys"),
        }
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
}
