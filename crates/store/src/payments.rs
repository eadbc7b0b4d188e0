//! The order's payment as OrderFlow knows it (the provider's ledger is the other side), and the
//! provider's webhook events. See docs/payments.md for the life of a payment.

use crate::{Result, Store};
use orderflow_domain::{Money, OrderId, OrderStatus, PaymentStatus};
use rust_decimal::Decimal;

/// The payment of an order, if one was attempted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentRow {
    /// The provider's payment intent (none for declines recorded by workers before payment
    /// intents).
    pub payment_id: Option<String>,
    pub amount: Decimal,
    pub status: PaymentStatus,
    pub captured: Decimal,
    pub refunded: Decimal,
    pub decline_reason: Option<String>,
    pub refund_id: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

/// A webhook event, as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentEventRow {
    pub event_id: String,
    pub r#type: String,
    pub outcome: String,
    pub received_at: chrono::DateTime<chrono::Utc>,
}

/// What became of a webhook event (`payment_events.outcome`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum EventOutcome {
    Delivered,
    Voided,
    Ignored,
    UnknownOrder,
}

impl EventOutcome {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// A webhook event, as received.
#[derive(Debug, Clone, Copy)]
pub struct NewPaymentEvent<'a> {
    pub event_id: &'a str,
    /// `None` when the event names no order this service could have made.
    pub order: Option<OrderId>,
    pub r#type: &'a str,
    pub payment_id: &'a str,
}

/// What an event changed about the order's payment, recorded with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentChange<'a> {
    /// The provider's answer to a payment that awaited the customer (only a
    /// `requires_action` payment of this id changes).
    Answered {
        authorized: bool,
        reason: Option<&'a str>,
    },
    /// An authorization that arrived after its order ended was voided.
    Voided,
    Unchanged,
}

impl Store {
    pub async fn payment(&self, order: OrderId) -> Result<Option<PaymentRow>> {
        let payment = sqlx::query_as!(
            PaymentRow,
            r#"SELECT payment_id, amount, status AS "status: PaymentStatus", captured, refunded,
                      decline_reason, refund_id, created_at, updated_at
               FROM payments WHERE order_id = $1"#,
            order.as_uuid()
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(payment)
    }

    /// Records the order's authorization and returns until when the order may wait for it
    /// to be confirmed (the stock hold's expiry). Records nothing and returns `None` if the
    /// order is closed (failed or cancelled, see `close_order`): the caller must then void it.
    /// Recording it again changes nothing but a `requires_action` that became `authorized`.
    /// `status` is what the provider answered: `RequiresAction` or `Authorized`.
    #[tracing::instrument(skip_all, fields(%order))]
    pub async fn record_authorization(
        &self,
        order: OrderId,
        payment_id: &str,
        amount: Money,
        status: PaymentStatus,
    ) -> Result<Option<Option<chrono::DateTime<chrono::Utc>>>> {
        // One statement: lock the order unless it is closed, then record. A concurrent close
        // either happens first (nothing is recorded) or waits for this one, and then voids it.
        let hold = sqlx::query_scalar!(
            "WITH open_order AS (
                 SELECT id, hold_expires_at FROM orders
                  WHERE id = $1 AND status NOT IN ($5, $6)
                 FOR UPDATE),
             recorded AS (
                 INSERT INTO payments (order_id, payment_id, amount, status)
                 SELECT id, $2, $3, $4 FROM open_order
                 ON CONFLICT (order_id) DO UPDATE SET status = excluded.status, updated_at = now()
                  WHERE payments.status = 'requires_action' AND excluded.status = 'authorized'),
             noted AS (
                 UPDATE orders SET payment_id = $2, updated_at = now(),
                        -- What happened: authorized, or awaiting the customer (a later
                        -- confirmation of that keeps it).
                        current_step = CASE
                            WHEN orders.status <> 'payment' OR orders.current_step = 'await_payment'
                                THEN orders.current_step
                            WHEN $4 = 'requires_action' THEN 'await_payment'
                            ELSE 'process_payment' END
                   FROM open_order WHERE orders.id = open_order.id)
             SELECT hold_expires_at FROM open_order",
            order.as_uuid(),
            payment_id,
            amount.amount(),
            status.as_str(),
            OrderStatus::Failed.as_str(),
            OrderStatus::Cancelled.as_str(),
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(hold)
    }

    #[tracing::instrument(skip_all, fields(%order))]
    pub async fn record_decline(
        &self,
        order: OrderId,
        payment_id: Option<&str>,
        amount: Money,
        reason: &str,
    ) -> Result<()> {
        sqlx::query!(
            "INSERT INTO payments (order_id, payment_id, amount, status, decline_reason)
             VALUES ($1, $2, $3, 'failed', $4)
             ON CONFLICT (order_id) DO UPDATE SET status = 'failed', decline_reason = $4,
                                                  updated_at = now()
              WHERE payments.status = 'requires_action'",
            order.as_uuid(),
            payment_id,
            amount.amount(),
            reason
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Marks the authorized payment captured, in full. Does nothing if it is not authorized
    /// (captured already: a retry).
    #[tracing::instrument(skip_all, fields(%order))]
    pub async fn record_capture(&self, order: OrderId) -> Result<()> {
        sqlx::query!(
            "UPDATE payments SET status = 'captured', captured = amount, updated_at = now()
             WHERE order_id = $1 AND status IN ('requires_action', 'authorized')",
            order.as_uuid()
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Marks the payment's authorization voided. Does nothing once it was captured.
    #[tracing::instrument(skip_all, fields(%order))]
    pub async fn record_void(&self, order: OrderId) -> Result<()> {
        sqlx::query!(
            "UPDATE payments SET status = 'voided', updated_at = now()
             WHERE order_id = $1 AND status IN ('requires_action', 'authorized')",
            order.as_uuid()
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Marks a captured payment refunded in full (payments are captured in full). Does nothing
    /// if there is none (or it is refunded).
    #[tracing::instrument(skip_all, fields(%order))]
    pub async fn record_refund(&self, order: OrderId, refund_id: &str) -> Result<()> {
        sqlx::query!(
            "UPDATE payments SET status = 'refunded', refund_id = $2, captured = amount,
                                 refunded = amount, updated_at = now()
             WHERE order_id = $1 AND status = 'captured'",
            order.as_uuid(),
            refund_id
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Whether the provider's event `event_id` was received before.
    pub async fn payment_event_seen(&self, event_id: &str) -> Result<bool> {
        let seen = sqlx::query_scalar!(
            r#"SELECT EXISTS (SELECT 1 FROM payment_events WHERE event_id = $1) AS "seen!""#,
            event_id
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(seen)
    }

    /// Records a handled event, what was done with it and what it changed, in one short
    /// transaction (after the slow part, the signal or the void, is done: no lock is held
    /// across a call to Temporal or the provider). Returns `false`, changing nothing, if the
    /// event was recorded meanwhile (a duplicate delivered concurrently).
    pub async fn record_payment_event(
        &self,
        event: NewPaymentEvent<'_>,
        outcome: EventOutcome,
        change: PaymentChange<'_>,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query!(
            "INSERT INTO payment_events (event_id, order_id, type, payment_id, outcome)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (event_id) DO NOTHING",
            event.event_id,
            event.order.map(|o| o.as_uuid()),
            event.r#type,
            event.payment_id,
            outcome.as_str()
        )
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if let (true, Some(order)) = (inserted, event.order) {
            match change {
                PaymentChange::Answered { authorized, reason } => {
                    sqlx::query!(
                        "UPDATE payments
                            SET status = CASE WHEN $3 THEN 'authorized' ELSE 'failed' END,
                                decline_reason = $4, updated_at = now()
                          WHERE order_id = $1 AND payment_id = $2 AND status = 'requires_action'",
                        order.as_uuid(),
                        event.payment_id,
                        authorized,
                        reason
                    )
                    .execute(&mut *tx)
                    .await?;
                }
                PaymentChange::Voided => {
                    sqlx::query!(
                        "UPDATE payments SET status = 'voided', updated_at = now()
                          WHERE order_id = $1 AND payment_id = $2
                            AND status IN ('requires_action', 'authorized')",
                        order.as_uuid(),
                        event.payment_id
                    )
                    .execute(&mut *tx)
                    .await?;
                }
                PaymentChange::Unchanged => {}
            }
        }
        tx.commit().await?;
        Ok(inserted)
    }

    pub async fn payment_events(&self, order: OrderId) -> Result<Vec<PaymentEventRow>> {
        let events = sqlx::query_as!(
            PaymentEventRow,
            "SELECT event_id, type, outcome, received_at FROM payment_events
             WHERE order_id = $1 ORDER BY received_at, event_id LIMIT 100",
            order.as_uuid()
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(events)
    }
}
