//! Reading orders beyond the original API: a paginated list and one order in full, both from
//! PostgreSQL (no worker needed).

use crate::auth::Principal;
use crate::error::{Context, Problem};
use crate::responses::{BadQuery, NotYours, OrderNotFound, Unauthenticated, Unavailable};
use crate::{ApiContext, ApiError};
use axum::Json;
use axum::extract::{Path, Query, State};
use chrono::{DateTime, Utc};
use orderflow_domain::{
    CustomerId, ErrorCode, NotificationKind, OrderId, OrderStatus, PaymentStatus, Step,
};
use orderflow_store::{
    NotificationRow, OrderFilter, OrderRow, PaymentEventRow, PaymentRow, ReservationRow,
};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use strum::IntoEnumIterator;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

const DEFAULT_PAGE: i64 = 20;
const MAX_PAGE: i64 = 100;

/// The filters of the order list. Each may also be sent empty, meaning "not set" (as an HTML
/// form sends an empty field).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only this customer's orders.
    #[param(max_length = 64, pattern = r"^[A-Za-z0-9_.:@-]{0,64}$")]
    pub customer_id: Option<String>,
    /// Only orders in this status.
    #[param(pattern = r"^(pending|validating|payment|completed|failed|cancelled)?$")]
    pub status: Option<String>,
    /// `next_cursor` of the previous page.
    #[param(pattern = r"^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})?$")]
    pub cursor: Option<String>,
    /// Orders per page, 1–100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

/// An order in a list.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OrderSummary {
    pub order_id: String,
    pub workflow_id: String,
    pub customer_id: String,
    pub status: OrderStatus,
    /// The step that last changed the order in the database (what happened; the order's
    /// state object, `/api/orders/state`, shows the step running now).
    pub current_step: Step,
    #[schema(value_type = String, example = "999.99")]
    pub total_amount: Decimal,
    pub error_code: Option<ErrorCode>,
    pub error_message: Option<String>,
    pub payment_id: Option<String>,
    pub customer_notified: bool,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    /// Until when the order's stock is held while its payment awaits the customer; the
    /// order fails with `payment_timeout` if it is not confirmed by then.
    pub hold_expires_at: Option<DateTime<Utc>>,
    /// The order's OpenTelemetry trace id (32 hex digits), when the service exports traces.
    #[schema(example = "4bf92f3577b34da6a3ce929d0e0e4736")]
    pub trace_id: Option<String>,
}

/// A page of orders, newest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OrderPage {
    pub orders: Vec<OrderSummary>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OrderItemView {
    pub product_id: String,
    pub name: String,
    pub quantity: i32,
    #[schema(value_type = String)]
    pub unit_price: Decimal,
    #[schema(value_type = String)]
    pub line_total: Decimal,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PaymentView {
    /// `requires_action` (awaiting the customer), `authorized`, `captured`, `voided`,
    /// `refunded` or `failed`.
    pub status: PaymentStatus,
    /// The payment provider's id.
    pub payment_id: Option<String>,
    #[schema(value_type = String, example = "999.99")]
    pub amount: Decimal,
    #[schema(value_type = String, example = "999.99")]
    pub captured: Decimal,
    #[schema(value_type = String, example = "0.00")]
    pub refunded: Decimal,
    pub decline_reason: Option<String>,
    pub refund_id: Option<String>,
    /// The provider's webhook events about it, oldest first.
    pub events: Vec<PaymentEventView>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PaymentEventView {
    pub event_id: String,
    #[schema(example = "payment_intent.authorized")]
    pub r#type: String,
    /// What OrderFlow did with it: `delivered`, `voided`, `ignored`.
    pub outcome: String,
    pub received_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NotificationView {
    pub kind: NotificationKind,
    pub channel: String,
    /// `sent` or `failed`.
    pub status: String,
    pub attempts: i32,
    pub last_error: Option<String>,
}

/// Something that happened to the order, from the rows it left in the database.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TimelineEvent {
    pub at: DateTime<Utc>,
    #[schema(example = "stock reserved")]
    pub event: String,
}

/// One order in full.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OrderDetail {
    #[serde(flatten)]
    pub order: OrderSummary,
    pub items: Vec<OrderItemView>,
    pub payment: Option<PaymentView>,
    pub notifications: Vec<NotificationView>,
    pub timeline: Vec<TimelineEvent>,
}

/// Orders, newest first, with cursor pagination.
#[utoipa::path(
    get,
    path = "/api/orders",
    tag = "orders",
    params(ListQuery),
    security((), ("bearer" = [])),
    responses(
        (status = 401, response = Unauthenticated),
        (status = 403, response = NotYours),
        (status = 200, description = "A page of orders", body = OrderPage),
        (status = 400, description = "A filter or the cursor is invalid", body = Problem, content_type = "application/problem+json"),
        (status = 503, response = Unavailable),
    )
)]
pub async fn list_orders(
    State(ctx): State<ApiContext>,
    principal: Principal,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<OrderPage>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::BadRequest(format!("limit must be from 1 to {MAX_PAGE}")));
    }
    let status = match query.status.as_deref() {
        None | Some("") => None,
        Some(text) => Some(OrderStatus::parse(text).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "status must be one of {}",
                OrderStatus::iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            ))
        })?),
    };
    let named = match query.customer_id.as_deref() {
        None | Some("") => None,
        Some(text) => Some(
            CustomerId::parse(text).map_err(|e| ApiError::BadRequest(e.to_string()))?.to_string(),
        ),
    };
    // A customer lists their own orders, and only those.
    let customer_id = match (principal.only_customer(), named) {
        (Some(me), Some(named)) if named != me.as_str() => {
            return Err(ApiError::Forbidden("Customers list their own orders only.".into()));
        }
        (Some(me), _) => Some(me.to_string()),
        (None, named) => named,
    };
    let before = match query.cursor.as_deref() {
        None | Some("") => None,
        // Exactly the form this API returns (lower-case, hyphenated), as described.
        Some(text) => Some(OrderId::from_uuid(
            Uuid::try_parse(text)
                .ok()
                .filter(|id| id.hyphenated().to_string() == text)
                .ok_or_else(|| {
                    ApiError::BadRequest("cursor is not one this API returned".into())
                })?,
        )),
    };
    // One more than a page, to know whether there is a next one.
    let filter = OrderFilter { customer_id, status, before, limit: limit + 1 };
    let mut rows = ctx.store.list_orders(&filter).await.context("listing orders")?;
    let next_cursor = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|r| r.id.to_string())
    } else {
        None
    };
    let orders = rows.into_iter().map(summary).collect();
    Ok(Json(OrderPage { orders, next_cursor }))
}

/// One order: items, amounts, payment, notifications and a timeline.
#[utoipa::path(
    get,
    path = "/api/orders/{order_id}",
    tag = "orders",
    params(("order_id" = String, Path, description = "The order's id (a UUID, lower-case, as returned)", pattern = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")),
    security((), ("bearer" = [])),
    responses(
        (status = 401, response = Unauthenticated),
        (status = 200, description = "The order", body = OrderDetail),
        (status = 400, response = BadQuery),
        (status = 404, response = OrderNotFound),
        (status = 503, response = Unavailable),
    )
)]
pub async fn order_detail(
    State(ctx): State<ApiContext>,
    principal: Principal,
    order_id: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<Json<OrderDetail>, ApiError> {
    let Path(order_id) = order_id.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let unknown =
        || ApiError::NotFound(format!("No order has id {}.", crate::extract::shown(&order_id)));
    // Exactly the form this API returns (lower-case, hyphenated): one URL per order.
    let id = Uuid::try_parse(&order_id)
        .ok()
        .filter(|id| id.hyphenated().to_string() == order_id)
        .map(OrderId::from_uuid)
        .ok_or_else(unknown)?;
    // Another customer's order is as unknown as one that does not exist.
    let row = ctx.store.order(id).await.context("reading the order")?;
    let row = row.filter(|row| principal.may_access(&row.customer_id)).ok_or_else(unknown)?;
    let (items, reservations, payment, events, notifications) = tokio::try_join!(
        ctx.store.order_items(id),
        ctx.store.reservations(id),
        ctx.store.payment(id),
        ctx.store.payment_events(id),
        ctx.store.notifications(id),
    )
    .context("reading the order's lines, stock, payment and notifications")?;
    Ok(Json(OrderDetail {
        timeline: timeline(&row, &reservations, payment.as_ref(), &events, &notifications),
        order: summary(row),
        items: items
            .into_iter()
            .map(|i| OrderItemView {
                line_total: i.unit_price * Decimal::from(i.quantity),
                product_id: i.product_id,
                name: i.name,
                quantity: i.quantity,
                unit_price: i.unit_price,
            })
            .collect(),
        payment: payment.map(|p| PaymentView {
            status: p.status,
            payment_id: p.payment_id,
            amount: cents(p.amount),
            captured: cents(p.captured),
            refunded: cents(p.refunded),
            decline_reason: p.decline_reason,
            refund_id: p.refund_id,
            events: events
                .into_iter()
                .map(|e| PaymentEventView {
                    event_id: e.event_id,
                    r#type: e.r#type,
                    outcome: e.outcome,
                    received_at: e.received_at,
                })
                .collect(),
        }),
        notifications: notifications
            .into_iter()
            .map(|n| NotificationView {
                kind: n.kind,
                channel: n.channel,
                status: n.status,
                attempts: n.attempts,
                // The delivery error is the mail provider's text: for operators only.
                last_error: n.last_error.filter(|_| principal.is_operator()),
            })
            .collect(),
    }))
}

/// What happened to the order, oldest first, from the rows it left behind.
fn timeline(
    row: &OrderRow,
    reservations: &[ReservationRow],
    payment: Option<&PaymentRow>,
    events: &[PaymentEventRow],
    notifications: &[NotificationRow],
) -> Vec<TimelineEvent> {
    let mut timeline = vec![TimelineEvent { at: row.created_at, event: "order created".into() }];
    if let Some(first) = reservations.iter().map(|r| r.created_at).min() {
        timeline.push(TimelineEvent { at: first, event: "stock reserved".into() });
    }
    if let Some(p) = payment {
        // What the authorization said when it was asked for; a customer's later answer is the
        // provider's event, at the time it arrived (an authorization requested is not one
        // granted).
        let answered_later = events.iter().any(|e| e.outcome == "delivered");
        let event = match p.status {
            _ if answered_later => "payment awaiting the customer",
            PaymentStatus::Failed => "payment declined",
            PaymentStatus::RequiresAction => "payment awaiting the customer",
            _ => "payment authorized",
        };
        timeline.push(TimelineEvent { at: p.created_at, event: event.into() });
        let settled = match p.status {
            PaymentStatus::Captured => Some("payment captured"),
            PaymentStatus::Voided => Some("payment voided"),
            PaymentStatus::Refunded => Some("payment refunded"),
            _ => None,
        };
        if let Some(event) = settled {
            timeline.push(TimelineEvent { at: p.updated_at, event: event.into() });
        }
    }
    for e in events {
        let event = match (e.r#type.as_str(), e.outcome.as_str()) {
            ("payment_intent.authorized", "delivered") => {
                "payment authorized: the customer confirmed it".to_owned()
            }
            ("payment_intent.failed", "delivered") => "payment refused by the customer".to_owned(),
            (kind, outcome) => format!("provider event {kind} ({outcome})"),
        };
        timeline.push(TimelineEvent { at: e.received_at, event });
    }
    for r in reservations.iter().filter(|r| r.status != "held") {
        let event = format!("{} × {} {}", r.quantity, r.product_id, r.status);
        timeline.push(TimelineEvent { at: r.updated_at, event });
    }
    if let Some(at) = row.completed_at {
        timeline.push(TimelineEvent { at, event: format!("order {}", row.status) });
    }
    for n in notifications {
        let event = format!("customer notification {} {}", n.kind, n.status);
        timeline.push(TimelineEvent { at: n.updated_at, event });
    }
    timeline.sort_by_key(|e| e.at);
    timeline
}

/// An amount with its two decimals, also when it is zero (PostgreSQL's zero arrives without
/// the column's scale).
fn cents(mut amount: Decimal) -> Decimal {
    amount.rescale(2);
    amount
}

fn summary(row: OrderRow) -> OrderSummary {
    OrderSummary {
        order_id: row.id.to_string(),
        workflow_id: row.workflow_id,
        customer_id: row.customer_id,
        status: row.status,
        current_step: row.current_step,
        total_amount: row.total_amount,
        error_code: row.error_code,
        error_message: row.error_message,
        payment_id: row.payment_id,
        customer_notified: row.customer_notified,
        created_at: row.created_at,
        completed_at: row.completed_at,
        hold_expires_at: row.hold_expires_at,
        trace_id: row.trace_id,
    }
}
