//! The order's payment as OrderFlow knows it (the provider's ledger is the other side), and the
//! provider's webhook events. See docs/payments.md for the life of a payment.

use crate::{Result, Store};
use orderflow_domain::{Money, OrderId, OrderStatus};
use rust_decimal::Decimal;

/// The payment of an order, if one was attempted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentRow {
    /// The provider's payment intent (none for declines recorded by workers before payment
    /// intents).
    pub payment_id: Option<String>,
    pub amount: Decimal,
    /// `requires_action`, `authorized`, `captured`, `voided`, `refunded` or `failed` (or
    /// `declined`, written by older workers: a `failed` one).
    pub status: String,
    pub captured: Decimal,
    pub refunded: Decimal,
    pub decline_reason: Option<String>,
    pub refund_id: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

/// What the provider said to the authorization, as recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthorizationStatus {
    /// The customer must confirm; the answer comes by webhook.
    RequiresAction,
    Authorized,
}

impl AuthorizationStatus {
    fn as_str(self) -> &'static str {
        match self {
            Self::RequiresAction => "requires_action",
            Self::Authorized => "authorized",
        }
    }
}

/// A webhook event, as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentEventRow {
    pub event_id: String,
    pub r#type: String,
    pub outcome: String,
    pub received_at: chrono::DateTime<chrono::Utc>,
}

/// What became of a webhook event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventOutcome {
    Delivered,
    Voided,
    Ignored,
    UnknownOrder,
}

impl EventOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Voided => "voided",
            Self::Ignored => "ignored",
            Self::UnknownOrder => "unknown_order",
        }
    }
}

/// A webhook event being received: its row is written but not committed until
/// [`ReceivedEvent::commit`], so that an event whose handling fails (Temporal unreachable) is
/// not remembered, and the provider's next delivery is handled afresh.
pub struct ReceivedEvent {
    tx: sqlx::Transaction<'static, sqlx::Postgres>,
    event_id: String,
}

impl ReceivedEvent {
    /// The provider's answer to a payment that waited for the customer, on the payment's row
    /// (the workflow gets it by signal). Only a `requires_action` payment of `payment_id`
    /// changes. Part of the event's transaction.
    pub async fn record_payment_answer(
        &mut self,
        order: OrderId,
        payment_id: &str,
        authorized: bool,
        reason: Option<&str>,
    ) -> Result<()> {
        sqlx::query!(
            "UPDATE payments SET status = CASE WHEN $3 THEN 'authorized' ELSE 'failed' END,
                                 decline_reason = $4, updated_at = now()
             WHERE order_id = $1 AND payment_id = $2 AND status = 'requires_action'",
            order.as_uuid(),
            payment_id,
            authorized,
            reason
        )
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Remembers the event with what was done with it.
    pub async fn commit(mut self, outcome: EventOutcome) -> Result<()> {
        sqlx::query!(
            "UPDATE payment_events SET outcome = $2 WHERE event_id = $1",
            self.event_id,
            outcome.as_str()
        )
        .execute(&mut *self.tx)
        .await?;
        Ok(self.tx.commit().await?)
    }
}

impl Store {
    pub async fn payment(&self, order: OrderId) -> Result<Option<PaymentRow>> {
        let payment = sqlx::query_as!(
            PaymentRow,
            "SELECT payment_id, amount, status, captured, refunded, decline_reason, refund_id,
                    created_at, updated_at
             FROM payments WHERE order_id = $1",
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
    pub async fn record_authorization(
        &self,
        order: OrderId,
        payment_id: &str,
        amount: Money,
        status: AuthorizationStatus,
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
                        current_step = CASE WHEN $4 = 'requires_action' AND orders.status = 'payment'
                                            THEN 'await_payment' ELSE orders.current_step END
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

    /// Marks a captured payment refunded in full. Does nothing if there is none (or it is
    /// refunded).
    pub async fn record_refund(&self, order: OrderId, refund_id: &str) -> Result<()> {
        sqlx::query!(
            "UPDATE payments SET status = 'refunded', refund_id = $2, refunded = captured,
                                 updated_at = now()
             WHERE order_id = $1 AND status = 'captured'",
            order.as_uuid(),
            refund_id
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Starts receiving a webhook event; `None` if it was received before (a repeated
    /// delivery: acknowledge it and do nothing). A second delivery arriving while the first is
    /// being handled waits for it.
    pub async fn receive_payment_event(
        &self,
        event_id: &str,
        order: Option<OrderId>,
        r#type: &str,
        payment_id: &str,
    ) -> Result<Option<ReceivedEvent>> {
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query!(
            "INSERT INTO payment_events (event_id, order_id, type, payment_id, outcome)
             VALUES ($1, $2, $3, $4, 'ignored')
             ON CONFLICT (event_id) DO NOTHING",
            event_id,
            order.map(|o| o.as_uuid()),
            r#type,
            payment_id
        )
        .execute(&mut *tx)
        .await?
        .rows_affected();
        Ok((inserted == 1).then(|| ReceivedEvent { tx, event_id: event_id.to_owned() }))
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
