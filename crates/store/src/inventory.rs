//! Stock moves: reserve (available → reserved), confirm (reserved → sold), release
//! (reserved → available). Each is one transaction that first locks the order row, which
//! serialises retries of the same step, and then locks the order's products in id order before
//! changing them, which keeps concurrent orders from deadlocking. Reservation checks every line
//! with the products locked, so there is no read-then-write race and N concurrent orders for the
//! last K units sell exactly K.
//!
//! Reserve and confirm run on every order, so each is one PL/pgSQL function (migration
//! `..._stock_moves_in_one_statement.sql`) called in one round trip; the benchmark measured
//! the difference (BENCHMARKS.md). The rules below are what those functions do.
//!
//! Closed orders are fenced: once an order is failed or cancelled (`close_order`), reserving or
//! confirming it does nothing. A step that a frozen or partitioned worker runs late, after the
//! workflow has moved on without it, therefore cannot hold or sell stock for a closed order.
//!
//! A customer's cancellation is decided here too (`request_cancellation`): it and the start of
//! confirmation (`begin_confirmation`, before the payment is captured) both take the order's
//! row lock, so exactly one of them wins. A cancelled order is never confirmed and an order
//! whose confirmation began is never cancelled, whatever a workflow replay believes.

use crate::{Result, Store, StoreError};
use orderflow_domain::{ErrorCode, OrderEnding, OrderId, OrderStatus, Step};
use sqlx::PgConnection;

/// A product did not have enough units for the order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not enough stock of {product_id}: {requested} requested, {available} available")]
pub struct InsufficientStock {
    pub product_id: String,
    pub requested: i32,
    pub available: i32,
}

impl Store {
    /// Holds the stock of every line of the order, all or nothing. Repeating it after it
    /// succeeded changes nothing. Moves the order to `payment`. One statement: the
    /// `reserve_stock` function of the migrations.
    #[tracing::instrument(skip(self))]
    pub async fn reserve_stock(
        &self,
        id: OrderId,
        hold: Option<std::time::Duration>,
    ) -> Result<Result<(), InsufficientStock>> {
        let shortage = sqlx::query_as!(
            InsufficientStock,
            r#"SELECT short_product AS "product_id!", requested AS "requested!",
                      in_stock AS "available!"
               FROM reserve_stock($1, make_interval(secs => $2))"#,
            id.as_uuid(),
            hold.map(|h| h.as_secs_f64())
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(shortage.map_or(Ok(()), Err))
    }

    /// The point of no return, before the payment is captured: from now on a cancellation is
    /// refused, unless the order is closed or its cancellation was requested first (then
    /// `Refused`). Idempotent. One statement: the `begin_confirmation` function of the
    /// migrations.
    #[tracing::instrument(skip(self))]
    pub async fn begin_confirmation(&self, id: OrderId) -> Result<Confirmation> {
        let outcome =
            sqlx::query_scalar!(r#"SELECT begin_confirmation($1) AS "outcome!""#, id.as_uuid())
                .fetch_one(&self.pool)
                .await?;
        match outcome.as_str() {
            "begun" => Ok(Confirmation::Confirmed),
            "already_confirmed" => Ok(Confirmation::AlreadyConfirmed),
            "refused" => Ok(Confirmation::Refused),
            other => Err(StoreError::Corrupt(format!("begin_confirmation answered {other:?}"))),
        }
    }

    /// Turns the held stock into sold stock and completes the order, unless the order is closed
    /// or its cancellation was requested first. Idempotent. One statement: the `confirm_order`
    /// function of the migrations. Called once the payment is captured.
    #[tracing::instrument(skip(self))]
    pub async fn confirm_order(&self, id: OrderId) -> Result<Confirmation> {
        let outcome =
            sqlx::query_scalar!(r#"SELECT confirm_order($1) AS "outcome!""#, id.as_uuid())
                .fetch_one(&self.pool)
                .await?;
        match outcome.as_str() {
            "confirmed" => Ok(Confirmation::Confirmed),
            "already_confirmed" => Ok(Confirmation::AlreadyConfirmed),
            "refused" => Ok(Confirmation::Refused),
            other => Err(StoreError::Corrupt(format!("confirm_order answered {other:?}"))),
        }
    }

    /// Records the customer's wish to cancel, unless the order has ended or its confirmation
    /// has begun. Once recorded, the order will not be confirmed and will end cancelled; asking
    /// again while it runs is recorded again, harmlessly.
    #[tracing::instrument(skip(self))]
    pub async fn request_cancellation(&self, id: OrderId) -> Result<CancelOutcome> {
        let mut tx = self.pool.begin().await?;
        // The workflow writes the order row first; a cancellation racing it waits for it.
        let order = lock_order(&mut tx, id).await?.ok_or(StoreError::NoSuchOrder(id))?;
        if order.status.is_terminal() {
            return Ok(CancelOutcome::Ended(order.status));
        }
        if order.confirming {
            return Ok(CancelOutcome::Confirming);
        }
        sqlx::query!(
            "UPDATE orders SET cancel_requested_at = COALESCE(cancel_requested_at, now()),
                               updated_at = now()
             WHERE id = $1",
            id.as_uuid()
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(CancelOutcome::Recorded)
    }

    /// Gives back whatever stock the order still holds and ends it failed or cancelled.
    /// Idempotent, and harmless for an order that never held stock.
    #[tracing::instrument(skip(self))]
    pub async fn release_stock(&self, id: OrderId, ending: &OrderEnding) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        if lock_order(&mut tx, id).await?.is_some() {
            sqlx::query!("SELECT settle_reservations($1, 'released')", id.as_uuid())
                .execute(&mut *tx)
                .await?;
            end_order(&mut tx, id, ending, Step::ReleaseStock).await?;
        }
        Ok(tx.commit().await?)
    }

    /// Ends the order failed or cancelled, which fences it (see the module comment): the first
    /// step of rolling an order back. A requested cancellation wins over a failure. Returns the
    /// status the order ends with, which is `completed` if it was confirmed after all.
    #[tracing::instrument(skip(self))]
    pub async fn close_order(&self, id: OrderId, ending: &OrderEnding) -> Result<Closing> {
        let mut tx = self.pool.begin().await?;
        let order = lock_order(&mut tx, id).await?.ok_or(StoreError::NoSuchOrder(id))?;
        if order.status.is_terminal() {
            return Ok(Closing { status: order.status, error_code: None, now: false });
        }
        let ending = if order.cancel_requested { &OrderEnding::Cancelled } else { ending };
        end_order(&mut tx, id, ending, Step::CloseOrder).await?;
        tx.commit().await?;
        let error_code = match ending {
            OrderEnding::Failed { code, .. } => Some(*code),
            OrderEnding::Cancelled => None,
        };
        Ok(Closing { status: ending.status(), error_code, now: true })
    }
}

async fn end_order(
    tx: &mut PgConnection,
    id: OrderId,
    ending: &OrderEnding,
    step: Step,
) -> Result<()> {
    let (code, message) = match ending {
        OrderEnding::Failed { code, message } => (Some(code.as_str()), Some(message.as_str())),
        OrderEnding::Cancelled => (None, None),
    };
    sqlx::query!(
        "UPDATE orders SET status = $2, error_code = $3, error_message = $4,
                current_step = $5, completed_at = now(), updated_at = now()
         WHERE id = $1 AND NOT (status = ANY($6))",
        id.as_uuid(),
        ending.status().as_str(),
        code,
        message,
        step.as_str(),
        &terminal_statuses(),
    )
    .execute(tx)
    .await?;
    Ok(())
}

/// What `confirm_order` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confirmation {
    Confirmed,
    /// It had been confirmed before (a retried step).
    AlreadyConfirmed,
    /// Closed, or the customer's cancellation came first: nothing was sold.
    Refused,
}

/// What `request_cancellation` decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelOutcome {
    /// Recorded: the order will end cancelled.
    Recorded,
    /// The order had already ended, with this status.
    Ended(OrderStatus),
    /// Its confirmation has begun (the payment is being captured): too late.
    Confirming,
}

/// How `close_order` left the order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closing {
    /// `failed`, `cancelled`, or `completed` if it had been confirmed after all.
    pub status: OrderStatus,
    /// Why it failed, when this call failed it.
    pub error_code: Option<ErrorCode>,
    /// Whether this call closed it (rather than finding it ended).
    pub now: bool,
}

/// The statuses no order leaves, as a query parameter.
fn terminal_statuses() -> Vec<String> {
    use strum::IntoEnumIterator;
    OrderStatus::iter().filter(|s| s.is_terminal()).map(|s| s.as_str().to_owned()).collect()
}

/// An order row, locked for the rest of the transaction.
struct LockedOrder {
    status: OrderStatus,
    cancel_requested: bool,
    confirming: bool,
}

/// Locks the order row for the rest of the transaction; `None` if there is no such order.
async fn lock_order(tx: &mut PgConnection, id: OrderId) -> Result<Option<LockedOrder>> {
    let order = sqlx::query_as!(
        LockedOrder,
        r#"SELECT status AS "status: OrderStatus", cancel_requested_at IS NOT NULL AS "cancel_requested!",
                  confirming_at IS NOT NULL AS "confirming!"
           FROM orders WHERE id = $1 FOR UPDATE"#,
        id.as_uuid()
    )
    .fetch_optional(tx)
    .await?;
    Ok(order)
}
