//! The Go service's order endpoints, kept: create, status, cancel, state.

use crate::auth::Principal;
use crate::error::{Context, Problem};
use crate::extract::OrderRef;
use crate::orchestrator::{Cancellation, Execution};
use crate::rate_limit::Client;
use crate::responses::{
    NoWorker, NotSentAsJson, NotYours, OrderNotFound, RateLimited, TooLarge, Unauthenticated,
    Unavailable, WorkflowIdMissing,
};
use crate::{ApiContext, ApiError, AppJson};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use orderflow_domain::{
    ErrorCode, IdempotencyKey, NewOrder, OrderDraft, OrderId, OrderState, OrderStatus,
    RequestedLine, WorkflowId, price_order,
};
use orderflow_store::KeyClaim;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use temporalio_client::WorkflowExecutionStatus;
use utoipa::ToSchema;

/// `POST /api/orders` body, exactly the original's shape.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"customer_id": "customer-001", "items": [{"product_id": "prod-001", "name": "iPhone 15 Pro", "quantity": 1, "price": 999.99}]}))]
pub struct CreateOrderRequest {
    /// 1–64 characters of `A-Z a-z 0-9 - _ . : @`. With `AUTH_MODE=jwt` a customer may omit it
    /// (it is the token's `sub`) and may not name anyone else; otherwise it is required.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 64, pattern = r"^[A-Za-z0-9_.:@-]{1,64}$")]
    pub customer_id: Option<String>,
    #[schema(min_items = 1, max_items = 50)]
    pub items: Vec<OrderItemRequest>,
}

/// One line of an order: 1–50 lines, each product once.
#[derive(Debug, Deserialize, ToSchema)]
pub struct OrderItemRequest {
    /// A product of the catalog (`GET /api/products`).
    #[schema(min_length = 1, max_length = 64, pattern = r"^[A-Za-z0-9_.:@-]{1,64}$")]
    pub product_id: String,
    /// Informational: the catalog's name is what the order records.
    #[serde(default)]
    pub name: Option<String>,
    /// A whole number from 1 to 1000.
    #[serde(deserialize_with = "crate::json::whole_number")]
    #[schema(minimum = 1, maximum = 1000)]
    pub quantity: i64,
    /// Must equal the catalog price: a JSON number like `999.99`, or the same as a string; at
    /// most two decimals.
    #[serde(deserialize_with = "crate::json::price")]
    #[schema(schema_with = price_schema)]
    pub price: Decimal,
}

/// A price as the API takes it: 0 to 1,000,000,000 with at most two decimals, as a JSON number
/// or a decimal string (what clients that keep money as text send). The two decimals are not
/// a `multipleOf: 0.01`: validators that check it on binary floats refuse prices like 19.99.
fn price_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
    OneOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Number)
                .minimum(Some(0))
                .maximum(Some(1_000_000_000)),
        )
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(crate::json::PRICE_PATTERN)),
        )
        .examples([serde_json::json!(999.99)])
        .build()
        .into()
}

impl CreateOrderRequest {
    /// The order as `principal` may place it: customers only for themselves.
    fn parse(self, principal: &Principal) -> Result<OrderDraft, ApiError> {
        let customer_id = match (principal.only_customer(), self.customer_id) {
            (Some(me), None) => me.as_str().to_owned(),
            (Some(me), Some(named)) if named != me.as_str() => {
                return Err(ApiError::Forbidden(
                    "Customers place orders for themselves only: omit customer_id or send your own."
                        .into(),
                ));
            }
            (_, Some(named)) => named,
            (None, None) => String::new(), // refused below as an empty customer_id
        };
        let lines = self
            .items
            .into_iter()
            .enumerate()
            .map(|(i, item)| {
                RequestedLine::parse(item.product_id, item.quantity, item.price)
                    .map_err(|e| e.within(format!("items[{i}]")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(OrderDraft::parse(customer_id, lines)?)
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OrderAccepted {
    pub workflow_id: String,
    pub order_id: String,
    pub status: OrderStatus,
    pub message: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OrderStatusResponse {
    pub workflow_id: String,
    pub order_id: String,
    pub status: OrderStatus,
    pub message: String,
    /// Why a failed order failed (`insufficient_stock`, `payment_declined`, ...).
    pub error_code: Option<ErrorCode>,
}

/// Place an order.
///
/// Prices and totals come from the catalog: each item's `price` must equal the catalog price.
/// With an `Idempotency-Key`, repeating the request returns the same order (200) and starts
/// nothing; the same key with another body is refused (422).
#[utoipa::path(
    post,
    path = "/api/orders",
    tag = "orders",
    request_body = CreateOrderRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe: 1–255 visible ASCII characters.", min_length = 1, max_length = 255, pattern = r"^[!-~]{1,255}$")),
    security((), ("bearer" = [])),
    responses(
        (status = 401, response = Unauthenticated),
        (status = 403, response = NotYours),
        (status = 429, response = RateLimited),
        (status = 201, description = "Accepted; processing started", body = OrderAccepted, headers(("Location" = String, description = "The order's status URL"))),
        (status = 200, description = "Already accepted for this Idempotency-Key", body = OrderAccepted),
        (status = 400, description = "Not JSON, or a malformed Idempotency-Key", body = Problem, content_type = "application/problem+json"),
        (status = 413, response = TooLarge),
        (status = 415, response = NotSentAsJson),
        (status = 422, description = "Invalid values, unknown product, price differing from the catalog, or an Idempotency-Key reused with another body", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Too many orders in flight (code `overloaded`, with `Retry-After`), or PostgreSQL or Temporal unavailable; nothing was created", body = Problem, content_type = "application/problem+json", headers(("Retry-After" = u32, description = "Seconds to wait before retrying, when overloaded"))),
    )
)]
#[tracing::instrument(skip_all, fields(order_id, workflow_id))]
pub async fn create_order(
    State(ctx): State<ApiContext>,
    principal: Principal,
    client: Client,
    headers: HeaderMap,
    AppJson(request): AppJson<CreateOrderRequest>,
) -> Result<Response, ApiError> {
    ctx.write_limits.check(&principal, &client)?;
    let key = idempotency_key(&headers)?;
    let draft = request.parse(&principal)?;
    // Before anything is read, written or started: a full process refuses at once.
    let ticket = ctx.admission.try_admit().ok_or_else(|| overloaded(&ctx))?;
    let catalog = ctx.store.catalog(&draft.product_ids()).await.context("pricing the order")?;
    let order = price_order(OrderId::generate(), &draft, &catalog)?;

    if let Some(key) = key {
        let (scope, hash, ttl) = (principal.scope(), fingerprint(&draft), ctx.idempotency_ttl);
        let claim = ctx.store.claim_idempotency_key(&scope, &key, &hash, order.order_id, ttl);
        match claim.await.context("claiming the idempotency key")? {
            KeyClaim::New => {}
            KeyClaim::Existing { same_request: false, .. } => {
                return Err(ApiError::Unprocessable {
                    code: "idempotency_key_reused",
                    detail: "This Idempotency-Key was already used with a different request body."
                        .into(),
                    field: Some("Idempotency-Key".into()),
                });
            }
            KeyClaim::Existing { order_id, same_request: true } => {
                return repeated(&ctx, NewOrder { order_id, ..order }).await;
            }
        }
    }
    record_ids(order.order_id);
    let workflow_id = order.order_id.workflow_id();
    ctx.orchestrator.start(order).await?;
    ticket.track(workflow_id.order_id());
    tracing::info!("order accepted");
    Ok(accepted(
        StatusCode::CREATED,
        workflow_id,
        OrderStatus::Pending,
        "Order accepted; processing started".into(),
    ))
}

/// The answer when this process already runs as many orders as it may.
fn overloaded(ctx: &ApiContext) -> ApiError {
    ApiError::Overloaded {
        retry_after: RETRY_AFTER_SECONDS,
        detail: format!(
            "Too many orders in flight ({} at once); nothing was created. Retry after {RETRY_AFTER_SECONDS} s.",
            ctx.admission.limit()
        ),
    }
}

/// What a shed client is told to wait. Orders finish in well under a second when the service is
/// not overloaded, so room frees up quickly; clients should add their own jitter.
const RETRY_AFTER_SECONDS: u32 = 1;

/// A request repeated with its Idempotency-Key: the answer (200) is the order the first one
/// created. Its workflow is started only if the first attempt may not have got that far (no
/// order row yet; starting twice is harmless): an order that has run is never run again, even
/// after Temporal has forgotten its workflow.
async fn repeated(ctx: &ApiContext, order: NewOrder) -> Result<Response, ApiError> {
    record_ids(order.order_id);
    let workflow_id = order.order_id.workflow_id();
    if ctx.store.order(order.order_id).await.context("reading the order")?.is_none() {
        ctx.orchestrator.start(order).await?;
    }
    let (status, message) = match current_status(ctx, workflow_id).await? {
        Some(order) => (order.status, order.message),
        None => (OrderStatus::Pending, OrderStatus::Pending.describe().to_owned()),
    };
    let message = format!("Order already accepted for this Idempotency-Key. {message}");
    Ok(accepted(StatusCode::OK, workflow_id, status, message))
}

fn accepted(
    code: StatusCode,
    workflow_id: WorkflowId,
    status: OrderStatus,
    message: String,
) -> Response {
    let body = OrderAccepted {
        workflow_id: workflow_id.to_string(),
        order_id: workflow_id.order_id().to_string(),
        status,
        message,
    };
    let location = format!("/api/orders/status?workflow_id={workflow_id}");
    let mut response = (code, Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// Puts the order's ids on the request's span, so every log line about it carries them.
fn record_ids(order_id: OrderId) {
    let span = tracing::Span::current();
    span.record("order_id", tracing::field::display(order_id));
    span.record("workflow_id", tracing::field::display(order_id.workflow_id()));
}

/// An order's status, from PostgreSQL (answers even when no worker runs).
#[utoipa::path(
    get,
    path = "/api/orders/status",
    tag = "orders",
    params(("workflow_id" = String, Query, description = "`order-{order_id}`, as returned when the order was placed", pattern = r"^order-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")),
    security((), ("bearer" = [])),
    responses(
        (status = 401, response = Unauthenticated),
        (status = 200, description = "The order's status", body = OrderStatusResponse),
        (status = 400, response = WorkflowIdMissing),
        (status = 404, response = OrderNotFound),
        (status = 503, response = Unavailable),
    )
)]
pub async fn order_status(
    State(ctx): State<ApiContext>,
    principal: Principal,
    OrderRef(workflow_id): OrderRef,
) -> Result<Json<OrderStatusResponse>, ApiError> {
    let order = visible_order(&ctx, &principal, workflow_id).await?;
    Ok(Json(OrderStatusResponse {
        workflow_id: workflow_id.to_string(),
        order_id: workflow_id.order_id().to_string(),
        status: order.status,
        message: order.message,
        error_code: order.error_code,
    }))
}

/// Cancel an order.
///
/// 202 when the order will end `cancelled` (the cancellation was recorded before its
/// confirmation began; or it already is cancelled): its stock released and any payment given
/// back. The answer's `status` is where the order is now; the cancellation is pending until it
/// reads `cancelled`. 409 when the order will not end cancelled: its confirmation had begun
/// (the payment was being captured), or it had completed or failed.
#[utoipa::path(
    post,
    path = "/api/orders/cancel",
    tag = "orders",
    params(("workflow_id" = String, Query, description = "`order-{order_id}`, as returned when the order was placed", pattern = r"^order-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")),
    security((), ("bearer" = [])),
    responses(
        (status = 401, response = Unauthenticated),
        (status = 403, response = NotYours),
        (status = 429, response = RateLimited),
        (status = 202, description = "The order will end (or has ended) cancelled", body = OrderStatusResponse),
        (status = 400, response = WorkflowIdMissing),
        (status = 404, response = OrderNotFound),
        (status = 409, description = "Too late: being confirmed, completed or failed", body = Problem, content_type = "application/problem+json"),
        (status = 503, response = NoWorker),
    )
)]
#[tracing::instrument(skip(ctx, principal, client), fields(%workflow_id))]
pub async fn cancel_order(
    State(ctx): State<ApiContext>,
    principal: Principal,
    client: Client,
    OrderRef(workflow_id): OrderRef,
) -> Result<Response, ApiError> {
    ctx.write_limits.check(&principal, &client)?;
    visible_order(&ctx, &principal, workflow_id).await?;
    match ctx.orchestrator.cancel(workflow_id).await? {
        Cancellation::Accepted(accepted) => {
            tracing::info!("cancellation accepted");
            Ok(cancelling(workflow_id, accepted.status))
        }
        Cancellation::Refused(reason) => {
            Err(ApiError::Conflict(format!("Cannot cancel: {reason}.")))
        }
        Cancellation::NotRunning => match current_status(&ctx, workflow_id).await? {
            Some(order) if order.status == OrderStatus::Cancelled => {
                Ok(cancelling(workflow_id, order.status))
            }
            Some(order) => Err(ApiError::Conflict(format!(
                "Cannot cancel: the order is already {}.",
                order.status
            ))),
            None => Err(unknown_order(workflow_id)),
        },
    }
}

/// The 202 of a cancellation: the order will end cancelled (or has). `status` is where it is
/// now; until it reads `cancelled`, the cancellation is pending.
fn cancelling(workflow_id: WorkflowId, status: OrderStatus) -> Response {
    let message = if status == OrderStatus::Cancelled {
        "The order is cancelled: its stock was released and any payment given back".to_owned()
    } else {
        format!(
            "Cancellation accepted and pending: the order (now {status}) will end cancelled, its \
             stock released and any payment given back"
        )
    };
    let body = OrderStatusResponse {
        workflow_id: workflow_id.to_string(),
        order_id: workflow_id.order_id().to_string(),
        status,
        message,
        error_code: None,
    };
    (StatusCode::ACCEPTED, Json(body)).into_response()
}

/// The workflow's state object: every step with its times, retries and errors.
#[utoipa::path(
    get,
    path = "/api/orders/state",
    tag = "orders",
    params(("workflow_id" = String, Query, description = "`order-{order_id}`, as returned when the order was placed", pattern = r"^order-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")),
    security((), ("bearer" = [])),
    responses(
        (status = 401, response = Unauthenticated),
        (status = 200, description = "The state object", body = OrderState),
        (status = 400, response = WorkflowIdMissing),
        (status = 404, response = OrderNotFound),
        (status = 503, response = NoWorker),
    )
)]
pub async fn order_state(
    State(ctx): State<ApiContext>,
    principal: Principal,
    OrderRef(workflow_id): OrderRef,
) -> Result<Json<OrderState>, ApiError> {
    visible_order(&ctx, &principal, workflow_id).await?;
    ctx.orchestrator.state(workflow_id).await?.map(Json).ok_or_else(|| unknown_order(workflow_id))
}

/// The order, if `principal` may see it; otherwise the same 404 as for an order that does not
/// exist, so that nobody learns whether another customer's order does: not from the answer,
/// and not from its timing either (an unknown order costs a question to Temporal, so refusing
/// someone else's asks it too).
async fn visible_order(
    ctx: &ApiContext,
    principal: &Principal,
    workflow_id: WorkflowId,
) -> Result<CurrentStatus, ApiError> {
    match current_status(ctx, workflow_id).await? {
        Some(order) if principal.may_access(&order.customer) => Ok(order),
        Some(_) => {
            let _ = ctx.orchestrator.execution(workflow_id).await;
            Err(unknown_order(workflow_id))
        }
        None => Err(unknown_order(workflow_id)),
    }
}

/// An order's status as the status endpoint reports it.
struct CurrentStatus {
    /// Whose order it is.
    customer: String,
    status: OrderStatus,
    message: String,
    error_code: Option<ErrorCode>,
}

/// The order's status from PostgreSQL (no worker needed). Before the workflow's first step has
/// written the row, Temporal is asked whether the workflow exists: then the order is pending.
async fn current_status(
    ctx: &ApiContext,
    workflow_id: WorkflowId,
) -> Result<Option<CurrentStatus>, ApiError> {
    if let Some(row) = ctx.store.order(workflow_id.order_id()).await.context("reading the order")? {
        let status = row.status;
        let message = match &row.error_message {
            Some(reason) => format!("{}: {reason}", status.describe()),
            None => status.describe().to_owned(),
        };
        let error_code = row.error_code;
        return Ok(Some(CurrentStatus { customer: row.customer_id, status, message, error_code }));
    }
    Ok(match ctx.orchestrator.execution(workflow_id).await? {
        Execution::Unknown => None,
        Execution::Known { status: WorkflowExecutionStatus::Running, customer } => {
            Some(CurrentStatus {
                customer,
                status: OrderStatus::Pending,
                message: OrderStatus::Pending.describe().to_owned(),
                error_code: None,
            })
        }
        Execution::Known { status: how, customer } => Some(CurrentStatus {
            customer,
            status: OrderStatus::Failed,
            message: format!("Processing ended ({how:?}) before the order was recorded"),
            error_code: None,
        }),
    })
}

fn unknown_order(workflow_id: WorkflowId) -> ApiError {
    ApiError::NotFound(format!("No order has workflow_id {workflow_id}."))
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<IdempotencyKey>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let text = value.to_str().map_err(|_| {
        ApiError::BadRequest("Idempotency-Key must be visible ASCII characters.".into())
    })?;
    IdempotencyKey::parse(text).map(Some).map_err(|e| ApiError::BadRequest(e.to_string()))
}

/// What makes two requests "the same" for an Idempotency-Key: the parsed order, so that
/// `999.99` and `"999.99"`, or a different `name`, or whitespace, do not count as different.
fn fingerprint(draft: &OrderDraft) -> Vec<u8> {
    let canonical = serde_json::to_vec(draft).expect("an order draft always serialises");
    Sha256::digest(canonical).to_vec()
}
