use crate::{Result, Store};
use orderflow_domain::{IdempotencyKey, OrderId};
use std::time::Duration;

/// What an `Idempotency-Key` refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyClaim {
    /// The key is new and now belongs to the order we were about to create.
    New,
    /// The key was used before, for `order_id`; `same_request` says whether with the same body.
    Existing { order_id: OrderId, same_request: bool },
}

impl Store {
    /// Ties `key` of `scope` (its sender) to `order_id` unless it is tied to an order already
    /// and younger than `ttl`. Concurrent claims of one key are serialised by its primary key:
    /// exactly one of them gets `New`.
    pub async fn claim_idempotency_key(
        &self,
        scope: &str,
        key: &IdempotencyKey,
        request_hash: &[u8],
        order_id: OrderId,
        ttl: Duration,
    ) -> Result<KeyClaim> {
        // A new key, or one that has expired, is (re)claimed for this request.
        let claimed = sqlx::query!(
            "INSERT INTO idempotency_keys (scope, key, request_hash, order_id)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (scope, key) DO UPDATE
             SET request_hash = EXCLUDED.request_hash, order_id = EXCLUDED.order_id,
                 created_at = now()
             WHERE idempotency_keys.created_at < now() - make_interval(secs => $5)",
            scope,
            key.as_str(),
            request_hash,
            order_id.as_uuid(),
            ttl.as_secs_f64()
        )
        .execute(&self.pool)
        .await?
        .rows_affected()
            == 1;
        if claimed {
            return Ok(KeyClaim::New);
        }
        let existing = sqlx::query!(
            "SELECT request_hash, order_id FROM idempotency_keys WHERE scope = $1 AND key = $2",
            scope,
            key.as_str()
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(KeyClaim::Existing {
            order_id: OrderId::from_uuid(existing.order_id),
            same_request: existing.request_hash == request_hash,
        })
    }

    /// Forgets keys older than `ttl`; returns how many.
    pub async fn expire_idempotency_keys(&self, ttl: Duration) -> Result<u64> {
        Ok(sqlx::query!(
            "DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(secs => $1)",
            ttl.as_secs_f64()
        )
        .execute(&self.pool)
        .await?
        .rows_affected())
    }
}
