use crate::inventory::lock_order;
use crate::{Result, Store};
use orderflow_domain::{Money, OrderId};
use rust_decimal::Decimal;

/// The payment of an order, if one was attempted.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PaymentRow {
    pub payment_id: Option<String>,
    pub amount: Decimal,
    /// `captured`, `declined` or `refunded`.
    pub status: String,
    pub decline_reason: Option<String>,
    pub refund_id: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

impl Store {
    pub async fn payment(&self, order: OrderId) -> Result<Option<PaymentRow>> {
        sqlx::query_as(
            "SELECT payment_id, amount, status, decline_reason, refund_id, created_at, updated_at
             FROM payments WHERE order_id = $1",
        )
        .bind(order.as_uuid())
        .fetch_optional(&self.pool)
        .await
    }

    /// Records a captured payment. The order's one payment row makes a second capture of the
    /// same order impossible; recording the same capture again changes nothing. Records nothing
    /// and returns `false` if the order is closed (failed or cancelled, see `close_order`): the
    /// caller must then give the money back.
    pub async fn record_capture(
        &self,
        order: OrderId,
        payment_id: &str,
        amount: Money,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        if lock_order(&mut tx, order).await?.is_none_or(|o| o.is_closed()) {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO payments (order_id, payment_id, amount, status) VALUES ($1, $2, $3, 'captured')
             ON CONFLICT (order_id) DO NOTHING",
        )
        .bind(order.as_uuid())
        .bind(payment_id)
        .bind(amount.amount())
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE orders SET payment_id = $2, updated_at = now() WHERE id = $1")
            .bind(order.as_uuid())
            .bind(payment_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    pub async fn record_decline(&self, order: OrderId, amount: Money, reason: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO payments (order_id, amount, status, decline_reason) VALUES ($1, $2, 'declined', $3)
             ON CONFLICT (order_id) DO NOTHING",
        )
        .bind(order.as_uuid())
        .bind(amount.amount())
        .bind(reason)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Marks a captured payment refunded. Does nothing if there is none (or it is refunded).
    pub async fn record_refund(&self, order: OrderId, refund_id: &str) -> Result<()> {
        sqlx::query(
            "UPDATE payments SET status = 'refunded', refund_id = $2, updated_at = now()
             WHERE order_id = $1 AND status = 'captured'",
        )
        .bind(order.as_uuid())
        .bind(refund_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
