//! The provider's ledger in PostgreSQL. Every change to an intent is one transaction that locks
//! its row, applies the provider's rules (`orderflow_providers::payment_intent`) and writes
//! the result, so concurrent calls for one intent are serialised and a crash loses nothing
//! that was answered.

use chrono::{DateTime, Utc};
use orderflow_domain::Money;
use orderflow_providers::payment_intent::{Command, IntentStatus, PaymentIntent, Refusal};
use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::PgPool;

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
    #[error("the ledger holds a value it cannot read: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

#[derive(Clone, Debug)]
pub struct Ledger {
    pool: PgPool,
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
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
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
        let id = format!("pi_{}", uuid::Uuid::new_v4().simple());
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

    /// Applies `command` to intent `id`. A refund carries its idempotency key: a key seen before
    /// is the refund it named, and changes nothing.
    pub async fn apply(
        &self,
        id: &str,
        command: Command,
        refund_key: Option<&str>,
    ) -> Result<Intent, LedgerError> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query_as!(
            Row,
            "SELECT id, order_id, amount, currency, status, captured, refunded, failure_reason,
                    created_at, updated_at
             FROM psp_intents WHERE id = $1 FOR UPDATE",
            id
        )
        .fetch_optional(&mut *tx)
        .await?;
        let mut intent = Intent::try_from(row.ok_or_else(|| LedgerError::NotFound(id.into()))?)?;
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
                return Ok(intent);
            }
        }
        if intent.state.apply(command)? {
            let state = &intent.state;
            intent.updated_at = sqlx::query_scalar!(
                "UPDATE psp_intents SET status = $2, captured = $3, refunded = $4,
                        failure_reason = $5, updated_at = now()
                 WHERE id = $1 RETURNING updated_at",
                id,
                state.status.as_str(),
                state.captured.amount(),
                state.refunded.amount(),
                state.failure_reason
            )
            .fetch_one(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(intent)
    }
}
