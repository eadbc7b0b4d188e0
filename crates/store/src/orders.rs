use crate::{Result, Store};
use chrono::{DateTime, Utc};
use orderflow_domain::{NewOrder, OrderId, OrderStatus};
use rust_decimal::Decimal;
use uuid::Uuid;

/// An order's row: what the status endpoint answers from, with or without a worker running.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OrderRow {
    pub id: Uuid,
    pub workflow_id: String,
    pub customer_id: String,
    pub status: String,
    pub current_step: String,
    pub total_amount: Decimal,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub payment_id: Option<String>,
    pub customer_notified: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

impl OrderRow {
    pub fn status(&self) -> Option<OrderStatus> {
        OrderStatus::parse(&self.status)
    }
}

impl Store {
    /// Writes a new order and its lines (status `pending`) in one statement. Running it again
    /// for the same order changes nothing and returns `false`.
    #[tracing::instrument(skip_all, fields(order_id = %order.order_id))]
    pub async fn insert_order(&self, order: &NewOrder) -> Result<bool> {
        let products: Vec<&str> = order.lines.iter().map(|l| l.product_id.as_str()).collect();
        let names: Vec<&str> = order.lines.iter().map(|l| l.name.as_str()).collect();
        let quantities: Vec<i32> = order.lines.iter().map(|l| l.quantity.get() as i32).collect();
        let prices: Vec<Decimal> = order.lines.iter().map(|l| l.unit_price.amount()).collect();
        // The lines are inserted only if the order was: an order has at least one line, so
        // "some line inserted" is "the order was new".
        let lines_inserted = sqlx::query(
            "WITH new_order AS (
                 INSERT INTO orders (id, workflow_id, customer_id, status, current_step, total_amount)
                 VALUES ($1, $2, $3, 'pending', 'create_order', $4)
                 ON CONFLICT (id) DO NOTHING
                 RETURNING id)
             INSERT INTO order_items (order_id, product_id, name, quantity, unit_price)
             SELECT new_order.id, line.*
             FROM new_order, UNNEST($5::text[], $6::text[], $7::int[], $8::numeric[]) AS line",
        )
        .bind(order.order_id.as_uuid())
        .bind(order.order_id.workflow_id().to_string())
        .bind(order.customer_id.as_str())
        .bind(order.total.amount())
        .bind(&products)
        .bind(&names)
        .bind(&quantities)
        .bind(&prices)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(lines_inserted > 0)
    }

    pub async fn order(&self, id: OrderId) -> Result<Option<OrderRow>> {
        sqlx::query_as(
            "SELECT id, workflow_id, customer_id, status, current_step, total_amount, error_code,
                    error_message, payment_id, customer_notified, created_at, updated_at, completed_at
             FROM orders WHERE id = $1",
        )
        .bind(id.as_uuid())
        .fetch_optional(&self.pool)
        .await
    }

    /// Which of `ids` have reached a terminal state (their `completed_at` is set).
    pub async fn finished_orders(&self, ids: &[OrderId]) -> Result<Vec<OrderId>> {
        let ids: Vec<Uuid> = ids.iter().map(|id| id.as_uuid()).collect();
        let finished: Vec<Uuid> = sqlx::query_scalar(
            "SELECT id FROM orders WHERE id = ANY($1) AND completed_at IS NOT NULL",
        )
        .bind(&ids)
        .fetch_all(&self.pool)
        .await?;
        Ok(finished.into_iter().map(OrderId::from_uuid).collect())
    }

    /// Shows that stock is being checked. Only moves a `pending` order.
    pub async fn mark_validating(&self, id: OrderId) -> Result<()> {
        sqlx::query(
            "UPDATE orders SET status = 'validating', current_step = 'reserve_stock', updated_at = now()
             WHERE id = $1 AND status = 'pending'",
        )
        .bind(id.as_uuid())
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

/// Which orders to list: newest first, optionally one customer's or in one status, and only
/// those older than `before` (the cursor: the last order of the previous page).
#[derive(Debug, Clone, Default)]
pub struct OrderFilter {
    pub customer_id: Option<String>,
    pub status: Option<OrderStatus>,
    pub before: Option<OrderId>,
    pub limit: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OrderItemRow {
    pub product_id: String,
    pub name: String,
    pub quantity: i32,
    pub unit_price: Decimal,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ReservationRow {
    pub product_id: String,
    pub quantity: i32,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct NotificationRow {
    pub kind: String,
    pub channel: String,
    pub status: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Store {
    pub async fn list_orders(&self, filter: &OrderFilter) -> Result<Vec<OrderRow>> {
        sqlx::query_as(
            "SELECT id, workflow_id, customer_id, status, current_step, total_amount, error_code,
                    error_message, payment_id, customer_notified, created_at, updated_at, completed_at
             FROM orders
             WHERE ($1::text IS NULL OR customer_id = $1)
               AND ($2::text IS NULL OR status = $2)
               AND ($3::uuid IS NULL OR id < $3)
             ORDER BY id DESC
             LIMIT $4",
        )
        .bind(filter.customer_id.as_deref())
        .bind(filter.status.map(|s| s.as_str()))
        .bind(filter.before.map(|id| id.as_uuid()))
        .bind(filter.limit)
        .fetch_all(&self.pool)
        .await
    }

    pub async fn order_items(&self, id: OrderId) -> Result<Vec<OrderItemRow>> {
        sqlx::query_as(
            "SELECT product_id, name, quantity, unit_price FROM order_items WHERE order_id = $1 ORDER BY product_id",
        )
        .bind(id.as_uuid())
        .fetch_all(&self.pool)
        .await
    }

    pub async fn reservations(&self, id: OrderId) -> Result<Vec<ReservationRow>> {
        sqlx::query_as(
            "SELECT product_id, quantity, status, created_at, updated_at FROM reservations
             WHERE order_id = $1 ORDER BY product_id",
        )
        .bind(id.as_uuid())
        .fetch_all(&self.pool)
        .await
    }

    pub async fn notifications(&self, id: OrderId) -> Result<Vec<NotificationRow>> {
        sqlx::query_as(
            "SELECT kind, channel, status, attempts, last_error, created_at, updated_at FROM notifications
             WHERE order_id = $1 ORDER BY created_at",
        )
        .bind(id.as_uuid())
        .fetch_all(&self.pool)
        .await
    }
}
