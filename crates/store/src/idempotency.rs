use crate::{Result, Store};
use orderflow_domain::{IdempotencyKey, OrderId};

/// What an `Idempotency-Key` refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyClaim {
    /// The key is new and now belongs to the order we were about to create.
    New,
    /// The key was used before, for `order_id`; `same_request` says whether with the same body.
    Existing { order_id: OrderId, same_request: bool },
}

impl Store {
    /// Ties `key` to `order_id` unless it is tied to an order already. Concurrent claims of one
    /// key are serialised by its primary key: exactly one of them gets `New`.
    pub async fn claim_idempotency_key(
        &self,
        key: &IdempotencyKey,
        request_hash: &[u8],
        order_id: OrderId,
    ) -> Result<KeyClaim> {
        let inserted = sqlx::query(
            "INSERT INTO idempotency_keys (key, request_hash, order_id) VALUES ($1, $2, $3)
             ON CONFLICT (key) DO NOTHING",
        )
        .bind(key.as_str())
        .bind(request_hash)
        .bind(order_id.as_uuid())
        .execute(&self.pool)
        .await?
        .rows_affected()
            == 1;
        if inserted {
            return Ok(KeyClaim::New);
        }
        let (hash, existing): (Vec<u8>, uuid::Uuid) =
            sqlx::query_as("SELECT request_hash, order_id FROM idempotency_keys WHERE key = $1")
                .bind(key.as_str())
                .fetch_one(&self.pool)
                .await?;
        Ok(KeyClaim::Existing {
            order_id: OrderId::from_uuid(existing),
            same_request: hash == request_hash,
        })
    }
}
