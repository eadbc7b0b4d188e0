use crate::{Result, Store};
use orderflow_domain::{NotificationKind, OrderId};

impl Store {
    /// Whether this message has already reached the customer (so a retry does not resend it).
    pub async fn notification_sent(&self, order: OrderId, kind: NotificationKind) -> Result<bool> {
        let sent = sqlx::query_scalar!(
            r#"SELECT EXISTS (SELECT 1 FROM notifications
                              WHERE order_id = $1 AND kind = $2 AND status = 'sent') AS "sent!""#,
            order.as_uuid(),
            kind.as_str()
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(sent)
    }

    /// Records one delivery attempt: `error` is `None` when it was delivered.
    pub async fn record_notification(
        &self,
        order: OrderId,
        kind: NotificationKind,
        channel: &str,
        message: &str,
        error: Option<&str>,
    ) -> Result<()> {
        // One statement: the attempt, the order's flag when it was delivered, and, the saga
        // being over, no step of the order is stuck any more (a stuck step that succeeded on a
        // worker that had not flagged it leaves its record behind).
        sqlx::query!(
            "WITH attempt AS (
                 INSERT INTO notifications (order_id, kind, channel, status, message, last_error)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (order_id, kind) DO UPDATE SET
                     status = CASE WHEN notifications.status = 'sent' THEN 'sent' ELSE EXCLUDED.status END,
                     attempts = notifications.attempts + 1,
                     last_error = EXCLUDED.last_error,
                     updated_at = now()),
             no_longer_stuck AS (DELETE FROM stuck_steps WHERE order_id = $1)
             UPDATE orders SET customer_notified = true, updated_at = now()
             WHERE id = $1 AND $6::text IS NULL",
            order.as_uuid(),
            kind.as_str(),
            channel,
            if error.is_none() { "sent" } else { "failed" },
            message,
            error
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
