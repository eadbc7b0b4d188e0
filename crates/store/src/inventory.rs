//! Stock moves: reserve (available → reserved), confirm (reserved → sold), release
//! (reserved → available). Each is one transaction that first locks the order row, which
//! serialises retries of the same step, and then touches products one by one in id order, which
//! keeps concurrent orders from deadlocking. Reservation is a conditional decrement
//! (`available >= quantity` in the UPDATE itself), so there is no read-then-write race and
//! N concurrent orders for the last K units sell exactly K.
//!
//! Closed orders are fenced: once an order is failed or cancelled (`close_order`), reserving or
//! confirming it does nothing. A step that a frozen or partitioned worker runs late, after the
//! workflow has moved on without it, therefore cannot hold or sell stock for a closed order.
//!
//! A customer's cancellation is decided here too (`request_cancellation`): it and confirmation
//! both take the order's row lock, so exactly one of them wins. A cancelled order is never
//! confirmed and a confirmed order is never cancelled, whatever a workflow replay believes.

use crate::{Result, Store};
use orderflow_domain::{OrderEnding, OrderId};
use sqlx::{PgConnection, Postgres, Transaction};

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
    /// succeeded changes nothing. Moves the order to `payment`.
    #[tracing::instrument(skip(self))]
    pub async fn reserve_stock(&self, id: OrderId) -> Result<Result<(), InsufficientStock>> {
        let mut tx = self.pool.begin().await?;
        let Some(order) = lock_order(&mut tx, id).await? else {
            return Err(sqlx::Error::RowNotFound);
        };
        if order.is_closed() {
            return Ok(Ok(()));
        }
        let already: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM reservations WHERE order_id = $1)")
                .bind(id.as_uuid())
                .fetch_one(&mut *tx)
                .await?;
        if !already {
            let lines: Vec<(String, i32)> = sqlx::query_as(
                "SELECT product_id, quantity FROM order_items WHERE order_id = $1 ORDER BY product_id",
            )
            .bind(id.as_uuid())
            .fetch_all(&mut *tx)
            .await?;
            for (product_id, quantity) in &lines {
                let taken = sqlx::query(
                    "UPDATE products SET available = available - $2, reserved = reserved + $2,
                            updated_at = now()
                     WHERE id = $1 AND available >= $2",
                )
                .bind(product_id)
                .bind(quantity)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if taken == 0 {
                    let available: i32 =
                        sqlx::query_scalar("SELECT available FROM products WHERE id = $1")
                            .bind(product_id)
                            .fetch_one(&mut *tx)
                            .await?;
                    tx.rollback().await?;
                    return Ok(Err(InsufficientStock {
                        product_id: product_id.clone(),
                        requested: *quantity,
                        available,
                    }));
                }
            }
            sqlx::query(
                "INSERT INTO reservations (order_id, product_id, quantity, status)
                 SELECT order_id, product_id, quantity, 'held' FROM order_items WHERE order_id = $1",
            )
            .bind(id.as_uuid())
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE orders SET status = 'payment', current_step = 'process_payment', updated_at = now()
                 WHERE id = $1 AND status IN ('pending', 'validating')",
            )
            .bind(id.as_uuid())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(Ok(()))
    }

    /// Turns the held stock into sold stock and completes the order, unless the order is closed
    /// or its cancellation was requested first. Idempotent.
    #[tracing::instrument(skip(self))]
    pub async fn confirm_order(&self, id: OrderId) -> Result<Confirmation> {
        let mut tx = self.pool.begin().await?;
        let Some(order) = lock_order(&mut tx, id).await? else {
            return Err(sqlx::Error::RowNotFound);
        };
        if order.status == "completed" {
            return Ok(Confirmation::AlreadyConfirmed);
        }
        if order.is_closed() || order.cancel_requested {
            return Ok(Confirmation::Refused);
        }
        let sold = settle_reservations(&mut tx, id, "sold").await?;
        for (product_id, quantity) in &sold {
            sqlx::query(
                "UPDATE products SET reserved = reserved - $2, sold = sold + $2, updated_at = now()
                 WHERE id = $1",
            )
            .bind(product_id)
            .bind(quantity)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "UPDATE orders SET status = 'completed', current_step = 'notify_customer',
                    completed_at = now(), updated_at = now()
             WHERE id = $1",
        )
        .bind(id.as_uuid())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Confirmation::Confirmed)
    }

    /// Records the customer's wish to cancel, unless the order has ended already (then returns
    /// its status). Once recorded, the order will not be confirmed and will end cancelled.
    #[tracing::instrument(skip(self))]
    pub async fn request_cancellation(&self, id: OrderId) -> Result<Result<(), String>> {
        let mut tx = self.pool.begin().await?;
        // The workflow writes the order row first; a cancellation racing it waits for it.
        let Some(order) = lock_order(&mut tx, id).await? else {
            return Err(sqlx::Error::RowNotFound);
        };
        if order.is_terminal() {
            return Ok(Err(order.status));
        }
        sqlx::query(
            "UPDATE orders SET cancel_requested_at = COALESCE(cancel_requested_at, now()), updated_at = now()
             WHERE id = $1",
        )
        .bind(id.as_uuid())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Ok(()))
    }

    /// Gives back whatever stock the order still holds and ends it failed or cancelled.
    /// Idempotent, and harmless for an order that never held stock.
    #[tracing::instrument(skip(self))]
    pub async fn release_stock(&self, id: OrderId, ending: &OrderEnding) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        if lock_order(&mut tx, id).await?.is_some() {
            let released = settle_reservations(&mut tx, id, "released").await?;
            for (product_id, quantity) in &released {
                sqlx::query(
                    "UPDATE products SET available = available + $2, reserved = reserved - $2,
                            updated_at = now()
                     WHERE id = $1",
                )
                .bind(product_id)
                .bind(quantity)
                .execute(&mut *tx)
                .await?;
            }
            end_order(&mut tx, id, ending, "release_stock").await?;
        }
        tx.commit().await
    }

    /// Ends the order failed or cancelled, which fences it (see the module comment): the first
    /// step of rolling an order back. A requested cancellation wins over a failure. Returns the
    /// status the order ends with, which is `completed` if it was confirmed after all.
    #[tracing::instrument(skip(self))]
    pub async fn close_order(&self, id: OrderId, ending: &OrderEnding) -> Result<Closing> {
        let mut tx = self.pool.begin().await?;
        let Some(order) = lock_order(&mut tx, id).await? else {
            return Err(sqlx::Error::RowNotFound);
        };
        if order.is_terminal() {
            return Ok(Closing { status: order.status, error_code: None, now: false });
        }
        let ending = if order.cancel_requested { &OrderEnding::Cancelled } else { ending };
        end_order(&mut tx, id, ending, "close_order").await?;
        tx.commit().await?;
        let error_code = match ending {
            OrderEnding::Failed { code, .. } => Some(code.as_str()),
            OrderEnding::Cancelled => None,
        };
        Ok(Closing { status: ending.status().as_str().to_owned(), error_code, now: true })
    }
}

async fn end_order(
    tx: &mut PgConnection,
    id: OrderId,
    ending: &OrderEnding,
    step: &str,
) -> Result<()> {
    let (code, message) = match ending {
        OrderEnding::Failed { code, message } => (Some(code.as_str()), Some(message.as_str())),
        OrderEnding::Cancelled => (None, None),
    };
    sqlx::query(
        "UPDATE orders SET status = $2, error_code = $3, error_message = $4,
                current_step = $5, completed_at = now(), updated_at = now()
         WHERE id = $1 AND status NOT IN ('completed', 'failed', 'cancelled')",
    )
    .bind(id.as_uuid())
    .bind(ending.status().as_str())
    .bind(code)
    .bind(message)
    .bind(step)
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

/// How `close_order` left the order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closing {
    /// `failed`, `cancelled`, or `completed` if it had been confirmed after all.
    pub status: String,
    /// Why it failed, when this call failed it.
    pub error_code: Option<&'static str>,
    /// Whether this call closed it (rather than finding it ended).
    pub now: bool,
}

/// An order row, locked for the rest of the transaction.
pub(crate) struct LockedOrder {
    pub status: String,
    pub cancel_requested: bool,
}

impl LockedOrder {
    /// Failed or cancelled: nothing may be reserved, sold or charged for it any more.
    pub fn is_closed(&self) -> bool {
        matches!(self.status.as_str(), "failed" | "cancelled")
    }

    pub fn is_terminal(&self) -> bool {
        self.is_closed() || self.status == "completed"
    }
}

/// Locks the order row for the rest of the transaction; `None` if there is no such order.
pub(crate) async fn lock_order(tx: &mut PgConnection, id: OrderId) -> Result<Option<LockedOrder>> {
    let row: Option<(String, bool)> = sqlx::query_as(
        "SELECT status, cancel_requested_at IS NOT NULL FROM orders WHERE id = $1 FOR UPDATE",
    )
    .bind(id.as_uuid())
    .fetch_optional(tx)
    .await?;
    Ok(row.map(|(status, cancel_requested)| LockedOrder { status, cancel_requested }))
}

/// Moves the order's held reservations to `to`, returning (product, quantity) sorted by product
/// so that the caller updates products in the one global lock order.
async fn settle_reservations(
    tx: &mut Transaction<'_, Postgres>,
    id: OrderId,
    to: &str,
) -> Result<Vec<(String, i32)>> {
    let mut moved: Vec<(String, i32)> = sqlx::query_as(
        "UPDATE reservations SET status = $2, updated_at = now()
         WHERE order_id = $1 AND status = 'held'
         RETURNING product_id, quantity",
    )
    .bind(id.as_uuid())
    .bind(to)
    .fetch_all(&mut **tx)
    .await?;
    moved.sort();
    Ok(moved)
}
