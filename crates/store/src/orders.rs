use crate::{Result, Store};
use chrono::{DateTime, Utc};
use orderflow_domain::{ErrorCode, NewOrder, NotificationKind, OrderId, OrderStatus, Step};
use rust_decimal::Decimal;
use uuid::Uuid;

/// An order's row: what the status endpoint answers from, with or without a worker running.
#[derive(Debug, Clone)]
pub struct OrderRow {
    pub id: Uuid,
    pub workflow_id: String,
    pub customer_id: String,
    pub status: OrderStatus,
    pub current_step: Step,
    pub total_amount: Decimal,
    pub error_code: Option<ErrorCode>,
    pub error_message: Option<String>,
    pub payment_id: Option<String>,
    pub customer_notified: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    /// Until when the order's stock is held while its payment is awaited.
    pub hold_expires_at: Option<DateTime<Utc>>,
    /// The order's OpenTelemetry trace, when traces were exported.
    pub trace_id: Option<String>,
}

impl Store {
    /// Writes a new order and its lines (status `pending`) in one statement. Running it again
    /// for the same order changes nothing and returns `false`.
    #[tracing::instrument(skip_all, fields(order_id = %order.order_id))]
    pub async fn insert_order(&self, order: &NewOrder, trace_id: Option<&str>) -> Result<bool> {
        let products: Vec<String> = order.lines.iter().map(|l| l.product_id.to_string()).collect();
        let names: Vec<String> = order.lines.iter().map(|l| l.name.clone()).collect();
        let quantities: Vec<i32> = order.lines.iter().map(|l| l.quantity.get() as i32).collect();
        let prices: Vec<Decimal> = order.lines.iter().map(|l| l.unit_price.amount()).collect();
        // The lines are inserted only if the order was: an order has at least one line, so
        // "some line inserted" is "the order was new".
        let lines_inserted = sqlx::query!(
            "WITH new_order AS (
                 INSERT INTO orders (id, workflow_id, customer_id, status, current_step, total_amount,
                                     trace_id)
                 VALUES ($1, $2, $3, $4, $5, $6, $11)
                 ON CONFLICT (id) DO NOTHING
                 RETURNING id)
             INSERT INTO order_items (order_id, product_id, name, quantity, unit_price)
             SELECT new_order.id, line.*
             FROM new_order, UNNEST($7::text[], $8::text[], $9::int[], $10::numeric[]) AS line",
            order.order_id.as_uuid(),
            order.order_id.workflow_id().to_string(),
            order.customer_id.as_str(),
            OrderStatus::Pending.as_str(),
            Step::CreateOrder.as_str(),
            order.total.amount(),
            &products,
            &names,
            &quantities,
            &prices,
            trace_id,
        )
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(lines_inserted > 0)
    }

    pub async fn order(&self, id: OrderId) -> Result<Option<OrderRow>> {
        let row = sqlx::query_as!(
            OrderRow,
            r#"SELECT id, workflow_id, customer_id, status AS "status: OrderStatus",
                      current_step AS "current_step: Step", total_amount,
                      error_code AS "error_code: ErrorCode", error_message, payment_id,
                      customer_notified, created_at, updated_at, completed_at,
                      hold_expires_at, trace_id
               FROM orders WHERE id = $1"#,
            id.as_uuid()
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(row)
    }

    /// Which of `ids` no longer need the engine: terminal (their `completed_at` is set), or
    /// waiting for their customer to confirm the payment, which costs nothing but a timer
    /// (admission control counts neither as in flight).
    pub async fn finished_orders(&self, ids: &[OrderId]) -> Result<Vec<OrderId>> {
        let ids: Vec<Uuid> = ids.iter().map(|id| id.as_uuid()).collect();
        let finished = sqlx::query_scalar!(
            "SELECT id FROM orders
             WHERE id = ANY($1) AND (completed_at IS NOT NULL OR current_step = 'await_payment')",
            &ids
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(finished.into_iter().map(OrderId::from_uuid).collect())
    }

    /// Shows that stock is being checked. Only moves a `pending` order.
    pub async fn mark_validating(&self, id: OrderId) -> Result<()> {
        sqlx::query!(
            "UPDATE orders SET status = $2, current_step = $3, updated_at = now()
             WHERE id = $1 AND status = $4",
            id.as_uuid(),
            OrderStatus::Validating.as_str(),
            Step::ReserveStock.as_str(),
            OrderStatus::Pending.as_str(),
        )
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

#[derive(Debug, Clone)]
pub struct OrderItemRow {
    pub product_id: String,
    pub name: String,
    pub quantity: i32,
    pub unit_price: Decimal,
}

#[derive(Debug, Clone)]
pub struct ReservationRow {
    pub product_id: String,
    pub quantity: i32,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct NotificationRow {
    pub kind: NotificationKind,
    pub channel: String,
    pub status: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Store {
    pub async fn list_orders(&self, filter: &OrderFilter) -> Result<Vec<OrderRow>> {
        let rows = sqlx::query_as!(
            OrderRow,
            r#"SELECT id, workflow_id, customer_id, status AS "status: OrderStatus",
                      current_step AS "current_step: Step", total_amount,
                      error_code AS "error_code: ErrorCode", error_message, payment_id,
                      customer_notified, created_at, updated_at, completed_at,
                      hold_expires_at, trace_id
               FROM orders
               WHERE ($1::text IS NULL OR customer_id = $1)
                 AND ($2::text IS NULL OR status = $2)
                 AND ($3::uuid IS NULL OR id < $3)
               ORDER BY id DESC
               LIMIT $4"#,
            filter.customer_id.as_deref(),
            filter.status.map(|s| s.as_str()),
            filter.before.map(|id| id.as_uuid()),
            filter.limit,
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }

    pub async fn order_items(&self, id: OrderId) -> Result<Vec<OrderItemRow>> {
        let items = sqlx::query_as!(
            OrderItemRow,
            "SELECT product_id, name, quantity, unit_price FROM order_items
             WHERE order_id = $1 ORDER BY product_id",
            id.as_uuid()
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(items)
    }

    pub async fn reservations(&self, id: OrderId) -> Result<Vec<ReservationRow>> {
        let holds = sqlx::query_as!(
            ReservationRow,
            "SELECT product_id, quantity, status, created_at, updated_at FROM reservations
             WHERE order_id = $1 ORDER BY product_id",
            id.as_uuid()
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(holds)
    }

    pub async fn notifications(&self, id: OrderId) -> Result<Vec<NotificationRow>> {
        let sent = sqlx::query_as!(
            NotificationRow,
            r#"SELECT kind AS "kind: NotificationKind", channel, status, attempts, last_error,
                      created_at, updated_at
               FROM notifications WHERE order_id = $1 ORDER BY created_at"#,
            id.as_uuid()
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(sent)
    }
}
