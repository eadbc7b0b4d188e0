//! Steps that keep failing, for the operators (`GET /api/admin/stuck-orders`).

use crate::{Result, Store};
use chrono::{DateTime, Utc};
use orderflow_domain::{OrderId, OrderStatus};
use uuid::Uuid;

/// A step that has failed many times in a row, with its order's status if the order exists.
#[derive(Debug, Clone)]
pub struct StuckStepRow {
    pub order_id: Uuid,
    pub workflow_id: String,
    pub status: Option<OrderStatus>,
    pub step: String,
    pub attempts: i32,
    pub last_error: String,
    pub stuck_since: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Longest error text kept: a step's error is a message, not a dump.
const MAX_ERROR_CHARS: usize = 2000;

impl Store {
    /// Records (or updates) a step that keeps failing.
    pub async fn flag_stuck(
        &self,
        order: OrderId,
        step: &str,
        attempts: u32,
        error: &str,
    ) -> Result<()> {
        let error: String = error.chars().take(MAX_ERROR_CHARS).collect();
        sqlx::query!(
            "INSERT INTO stuck_steps (order_id, step, attempts, last_error) VALUES ($1, $2, $3, $4)
             ON CONFLICT (order_id, step) DO UPDATE
             SET attempts = EXCLUDED.attempts, last_error = EXCLUDED.last_error, updated_at = now()",
            order.as_uuid(),
            step,
            i32::try_from(attempts).unwrap_or(i32::MAX),
            error
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The step succeeded after all.
    pub async fn clear_stuck(&self, order: OrderId, step: &str) -> Result<()> {
        sqlx::query!(
            "DELETE FROM stuck_steps WHERE order_id = $1 AND step = $2",
            order.as_uuid(),
            step
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Every step stuck now, longest stuck first: one that has not failed again for
    /// `forget_after` is not (a stuck step is retried, and fails again, more often than that).
    pub async fn stuck_steps(
        &self,
        forget_after: std::time::Duration,
    ) -> Result<Vec<StuckStepRow>> {
        let stuck = sqlx::query_as!(
            StuckStepRow,
            r#"SELECT s.order_id, 'order-' || s.order_id AS "workflow_id!",
                      o.status AS "status?: OrderStatus", s.step, s.attempts, s.last_error,
                      s.stuck_since, s.updated_at
               FROM stuck_steps s LEFT JOIN orders o ON o.id = s.order_id
               WHERE s.updated_at > now() - make_interval(secs => $1)
               ORDER BY s.stuck_since LIMIT 1000"#,
            forget_after.as_secs_f64()
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(stuck)
    }
}
