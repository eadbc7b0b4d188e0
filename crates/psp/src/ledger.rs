//! The provider's ledger in PostgreSQL. Every change to an intent is one transaction that locks
//! its row, applies the provider's rules (`orderflow_providers::payment_intent`) and writes
//! the result, so concurrent calls for one intent are serialised and a crash loses nothing
//! that was answered.

use crate::payment_intent::{Command, IntentStatus, PaymentIntent, Refusal};
use chrono::{DateTime, Utc};
use orderflow_domain::Money;
use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use std::time::Duration;

/// An intent as the provider's API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Intent {
    pub id: String,
    pub order_id: String,
    pub currency: String,
    #[serde(flatten)]
    pub state: PaymentIntent,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What a call did not do, and why.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("no payment intent {0}")]
    NotFound(String),
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error("order {0} already has a payment intent for another amount or currency")]
    KeyReused(String),
    #[error("the idempotency key {0} was used for another refund")]
    RefundKeyReused(String),
    #[error("the ledger holds a value it cannot read: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

#[derive(Clone, Debug)]
pub struct Ledger {
    pool: PgPool,
    outbox: Outbox,
}

struct Row {
    id: String,
    order_id: String,
    amount: Decimal,
    currency: String,
    status: String,
    captured: Decimal,
    refunded: Decimal,
    failure_reason: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<Row> for Intent {
    type Error = LedgerError;

    fn try_from(row: Row) -> Result<Self, LedgerError> {
        let money = |field: &str, amount| {
            Money::parse(field, amount).map_err(|e| LedgerError::Corrupt(e.to_string()))
        };
        let status = IntentStatus::parse(&row.status)
            .ok_or_else(|| LedgerError::Corrupt(format!("status {:?}", row.status)))?;
        Ok(Intent {
            state: PaymentIntent {
                status,
                amount: money("amount", row.amount)?,
                captured: money("captured", row.captured)?,
                refunded: money("refunded", row.refunded)?,
                failure_reason: row.failure_reason,
            },
            id: row.id,
            order_id: row.order_id,
            currency: row.currency,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

impl Ledger {
    pub fn new(pool: PgPool, outbox: Outbox) -> Self {
        Self { pool, outbox }
    }

    /// Creates the ledger's tables if they are missing.
    pub async fn install(&self) -> Result<(), sqlx::Error> {
        sqlx::raw_sql(include_str!("../schema.sql")).execute(&self.pool).await?;
        Ok(())
    }

    /// The intent of `order_id`, created if it has none; `true` if this call created it.
    /// Asking again for the same order with the same amount and currency is the same intent.
    pub async fn create(
        &self,
        order_id: &str,
        amount: Money,
        currency: &str,
    ) -> Result<(Intent, bool), LedgerError> {
        // Time-ordered, so that the ledger lists oldest first.
        let id = format!("pi_{}", uuid::Uuid::now_v7().simple());
        let status = IntentStatus::RequiresAuthorization.as_str();
        let created = sqlx::query_as!(
            Row,
            "INSERT INTO psp_intents (id, order_id, amount, currency, status)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (order_id) DO NOTHING
             RETURNING id, order_id, amount, currency, status, captured, refunded, failure_reason,
                       created_at, updated_at",
            id,
            order_id,
            amount.amount(),
            currency,
            status
        )
        .fetch_optional(&self.pool)
        .await?;
        if let Some(row) = created {
            return Ok((row.try_into()?, true));
        }
        let existing = self.by_order(order_id).await?.ok_or_else(|| {
            LedgerError::Corrupt(format!("order {order_id} conflicted but has no intent"))
        })?;
        if existing.state.amount != amount || existing.currency != currency {
            return Err(LedgerError::KeyReused(order_id.to_owned()));
        }
        Ok((existing, false))
    }

    pub async fn get(&self, id: &str) -> Result<Option<Intent>, LedgerError> {
        let row = sqlx::query_as!(
            Row,
            "SELECT id, order_id, amount, currency, status, captured, refunded, failure_reason,
                    created_at, updated_at
             FROM psp_intents WHERE id = $1",
            id
        )
        .fetch_optional(&self.pool)
        .await?;
        row.map(Intent::try_from).transpose()
    }

    pub async fn by_order(&self, order_id: &str) -> Result<Option<Intent>, LedgerError> {
        let row = sqlx::query_as!(
            Row,
            "SELECT id, order_id, amount, currency, status, captured, refunded, failure_reason,
                    created_at, updated_at
             FROM psp_intents WHERE order_id = $1",
            order_id
        )
        .fetch_optional(&self.pool)
        .await?;
        row.map(Intent::try_from).transpose()
    }

    /// The whole ledger, oldest first, `limit` at a time after the intent `after`.
    pub async fn list(&self, after: Option<&str>, limit: i64) -> Result<Vec<Intent>, LedgerError> {
        let rows = sqlx::query_as!(
            Row,
            "SELECT id, order_id, amount, currency, status, captured, refunded, failure_reason,
                    created_at, updated_at
             FROM psp_intents WHERE ($1::text IS NULL OR id > $1) ORDER BY id LIMIT $2",
            after,
            limit
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(Intent::try_from).collect()
    }

    /// Voids intent `id` if it has been authorized for longer than `ttl` (its authorization
    /// lapsed); returns whether it did.
    pub async fn expire_authorization(&self, id: &str, ttl: Duration) -> Result<bool, LedgerError> {
        let mut tx = self.pool.begin().await?;
        let Some(mut intent) = lock(&mut tx, id).await? else { return Ok(false) };
        let lapsed = intent.state.status == IntentStatus::Authorized
            && Utc::now() - intent.updated_at
                >= chrono::Duration::from_std(ttl).unwrap_or_default();
        if lapsed {
            intent.state.apply(Command::Void)?;
            intent.state.failure_reason = Some("the authorization expired".into());
            save(&mut tx, &mut intent).await?;
        }
        tx.commit().await?;
        Ok(lapsed)
    }

    /// Applies `command` to intent `id`. A refund carries its idempotency key: a key seen before
    /// is the refund it named, and changes nothing. A confirmation that decides the intent
    /// queues its webhook event in the same transaction (see `outbox`).
    pub async fn apply(
        &self,
        id: &str,
        command: Command,
        refund_key: Option<&str>,
    ) -> Result<Intent, LedgerError> {
        let mut tx = self.pool.begin().await?;
        let mut intent =
            lock(&mut tx, id).await?.ok_or_else(|| LedgerError::NotFound(id.into()))?;
        if let (Command::Refund(asked), Some(key)) = (&command, refund_key) {
            let amount = asked.unwrap_or_else(|| intent.state.refundable());
            if amount.amount().is_zero() {
                // Nothing (left) to refund: no refund to remember under the key.
                intent.state.apply(command)?;
                return Ok(intent);
            }
            let new_key = sqlx::query!(
                "INSERT INTO psp_refunds (key, intent_id, amount) VALUES ($1, $2, $3)
                 ON CONFLICT (key) DO NOTHING",
                key,
                id,
                amount.amount()
            )
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if !new_key {
                // The refund this key named, if it is the same one; another is refused.
                let earlier =
                    sqlx::query!("SELECT intent_id, amount FROM psp_refunds WHERE key = $1", key)
                        .fetch_one(&mut *tx)
                        .await?;
                if earlier.intent_id != id || earlier.amount != amount.amount() {
                    return Err(LedgerError::RefundKeyReused(key.into()));
                }
                return Ok(intent);
            }
        }
        let confirming = matches!(command, Command::Confirm(_));
        if intent.state.apply(command)? {
            save(&mut tx, &mut intent).await?;
            if confirming {
                self.outbox.queue(&mut tx, &intent).await?;
            }
        }
        tx.commit().await?;
        Ok(intent)
    }

    /// The customer will answer intent `id` after `delay` (the simulated bank app), even if the
    /// provider restarts meanwhile.
    pub async fn schedule_confirmation(
        &self,
        id: &str,
        succeed: bool,
        delay: Duration,
    ) -> Result<(), LedgerError> {
        sqlx::query!(
            "INSERT INTO psp_confirmations (intent_id, succeed, due_at)
             VALUES ($1, $2, now() + make_interval(secs => $3))
             ON CONFLICT (intent_id) DO NOTHING",
            id,
            succeed,
            delay.as_secs_f64()
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Applies the customers' answers that are due; returns how many. Each answer, the intent's
    /// new state and its webhook event are one transaction. An answer that comes too late (the
    /// merchant voided the intent meanwhile) changes nothing.
    pub async fn decide_due_confirmations(&self) -> Result<usize, LedgerError> {
        let mut tx = self.pool.begin().await?;
        let due = sqlx::query!(
            "DELETE FROM psp_confirmations WHERE intent_id IN (
                 SELECT intent_id FROM psp_confirmations WHERE due_at <= now()
                 ORDER BY due_at LIMIT 100 FOR UPDATE SKIP LOCKED)
             RETURNING intent_id, succeed"
        )
        .fetch_all(&mut *tx)
        .await?;
        for answer in &due {
            let Some(mut intent) = lock(&mut tx, &answer.intent_id).await? else { continue };
            if let Ok(true) = intent.state.apply(Command::Confirm(answer.succeed)) {
                save(&mut tx, &mut intent).await?;
                self.outbox.queue(&mut tx, &intent).await?;
            }
        }
        tx.commit().await?;
        Ok(due.len())
    }

    /// Up to `limit` webhook deliveries that are due, each leased for `lease` (if the provider
    /// dies mid-delivery, it is tried again once the lease runs out).
    pub async fn lease_webhooks(
        &self,
        lease: Duration,
        limit: i64,
    ) -> Result<Vec<Delivery>, LedgerError> {
        Ok(sqlx::query_as!(
            Delivery,
            "UPDATE psp_webhooks SET due_at = now() + make_interval(secs => $1),
                    attempts = attempts + 1
             WHERE seq IN (SELECT seq FROM psp_webhooks
                           WHERE delivered_at IS NULL AND due_at <= now()
                           ORDER BY due_at LIMIT $2 FOR UPDATE SKIP LOCKED)
             RETURNING seq, payload, attempts",
            lease.as_secs_f64(),
            limit
        )
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn delivered(&self, seq: i64) -> Result<(), LedgerError> {
        sqlx::query!("UPDATE psp_webhooks SET delivered_at = now() WHERE seq = $1", seq)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn retry_later(&self, seq: i64, after: Duration) -> Result<(), LedgerError> {
        sqlx::query!(
            "UPDATE psp_webhooks SET due_at = now() + make_interval(secs => $2) WHERE seq = $1",
            seq,
            after.as_secs_f64()
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

/// A webhook event waiting to be delivered.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub seq: i64,
    pub payload: String,
    pub attempts: i32,
}

/// How events are queued: after `delay`, and a reproducible share twice (providers deliver at
/// least once, and sometimes more).
#[derive(Debug, Clone, Default)]
pub struct Outbox {
    pub delay: Duration,
    pub duplicate_rate: f64,
}

impl Outbox {
    /// Queues the event telling the merchant how `intent` was decided.
    async fn queue(&self, tx: &mut PgConnection, intent: &Intent) -> Result<(), LedgerError> {
        let kind = match intent.state.status {
            IntentStatus::Authorized => "payment_intent.authorized",
            _ => "payment_intent.failed",
        };
        let event_id = format!("evt_{}", uuid::Uuid::now_v7().simple());
        let payload = serde_json::json!({
            "id": event_id,
            "type": kind,
            "created": Utc::now().timestamp(),
            "data": intent,
        })
        .to_string();
        let copies = if orderflow_providers::draw(&event_id, "duplicate") < self.duplicate_rate {
            2
        } else {
            1
        };
        for copy in 0..copies {
            // A duplicate follows the original a little later, as a provider's retry would.
            let delay = self.delay + Duration::from_millis(50 * copy);
            sqlx::query!(
                "INSERT INTO psp_webhooks (event_id, payload, due_at)
                 VALUES ($1, $2, now() + make_interval(secs => $3))",
                event_id,
                payload,
                delay.as_secs_f64()
            )
            .execute(&mut *tx)
            .await?;
        }
        Ok(())
    }
}

/// Locks intent `id` for the rest of the transaction.
async fn lock(tx: &mut PgConnection, id: &str) -> Result<Option<Intent>, LedgerError> {
    let row = sqlx::query_as!(
        Row,
        "SELECT id, order_id, amount, currency, status, captured, refunded, failure_reason,
                created_at, updated_at
         FROM psp_intents WHERE id = $1 FOR UPDATE",
        id
    )
    .fetch_optional(tx)
    .await?;
    row.map(Intent::try_from).transpose()
}

/// Writes `intent`'s state (its row is locked).
async fn save(tx: &mut PgConnection, intent: &mut Intent) -> Result<(), LedgerError> {
    let state = &intent.state;
    intent.updated_at = sqlx::query_scalar!(
        "UPDATE psp_intents SET status = $2, captured = $3, refunded = $4,
                failure_reason = $5, updated_at = now()
         WHERE id = $1 RETURNING updated_at",
        intent.id,
        state.status.as_str(),
        state.captured.amount(),
        state.refunded.amount(),
        state.failure_reason
    )
    .fetch_one(tx)
    .await?;
    Ok(())
}
