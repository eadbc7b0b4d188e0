use crate::{Result, Store};
use orderflow_domain::{Money, OrderId, OrderStatus};
use rust_decimal::Decimal;

/// The payment of an order, if one was attempted.
#[derive(Debug, Clone, PartialEq, Eq)]
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
        let payment = sqlx::query_as!(
            PaymentRow,
            "SELECT payment_id, amount, status, decline_reason, refund_id, created_at, updated_at
             FROM payments WHERE order_id = $1",
            order.as_uuid()
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(payment)
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
        // One statement: lock the order unless it is closed, then record the capture and put its
        // id on the order. A concurrent close either happens first (nothing is recorded) or
        // waits for this one.
        let recorded = sqlx::query!(
            "WITH open_order AS (
                 SELECT id FROM orders WHERE id = $1 AND status NOT IN ($4, $5)
                 FOR UPDATE),
             capture AS (
                 INSERT INTO payments (order_id, payment_id, amount, status)
                 SELECT id, $2, $3, 'captured' FROM open_order
                 ON CONFLICT (order_id) DO NOTHING)
             UPDATE orders SET payment_id = $2, updated_at = now()
             FROM open_order WHERE orders.id = open_order.id",
            order.as_uuid(),
            payment_id,
            amount.amount(),
            OrderStatus::Failed.as_str(),
            OrderStatus::Cancelled.as_str(),
        )
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(recorded == 1)
    }

    pub async fn record_decline(&self, order: OrderId, amount: Money, reason: &str) -> Result<()> {
        sqlx::query!(
            "INSERT INTO payments (order_id, amount, status, decline_reason)
             VALUES ($1, $2, 'declined', $3)
             ON CONFLICT (order_id) DO NOTHING",
            order.as_uuid(),
            amount.amount(),
            reason
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Marks a captured payment refunded. Does nothing if there is none (or it is refunded).
    pub async fn record_refund(&self, order: OrderId, refund_id: &str) -> Result<()> {
        sqlx::query!(
            "UPDATE payments SET status = 'refunded', refund_id = $2, updated_at = now()
             WHERE order_id = $1 AND status = 'captured'",
            order.as_uuid(),
            refund_id
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
