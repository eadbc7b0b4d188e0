//! The provider's HTTP API, shaped like Stripe's PaymentIntents: JSON in and out, errors as
//! `{"error": {"type", "message"}}`, 404 for an unknown intent, 409 for a call the intent's
//! state does not allow. Under `PSP_OUTAGE_RATE` a share of calls is answered 503 before
//! anything is done, as a provider having a bad day does.

use crate::ledger::{Intent, Ledger, LedgerError};
use crate::payment_intent::{AuthorizeAnswer, Command, IntentStatus, Refusal};
use crate::{ConfirmOutcome, PspConfig};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use orderflow_domain::Money;
use orderflow_providers::{FailureSchedule, draw};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use tower_http::cors::{Any, CorsLayer};

#[derive(Clone)]
struct Psp {
    ledger: Ledger,
    config: Arc<PspConfig>,
    outages: Arc<FailureSchedule>,
}

/// The provider's routes over `ledger`.
pub fn router(ledger: Ledger, config: PspConfig) -> Router {
    let outages = Arc::new(FailureSchedule::new(config.outage_rate));
    let psp = Psp { ledger, config: Arc::new(config), outages };
    Router::new()
        .route("/v1/payment_intents", post(create).get(list))
        .route("/v1/payment_intents/{id}", get(read))
        .route("/v1/payment_intents/{id}/authorize", post(authorize))
        // Any page may call it: OrderFlow's dashboard (another origin) plays the customer's
        // bank app and answers here. Only this call: the rest is for the merchant's servers.
        .route(
            "/v1/payment_intents/{id}/confirm",
            post(confirm).layer(
                CorsLayer::new()
                    .allow_origin(Any)
                    .allow_methods([Method::POST])
                    .allow_headers([header::CONTENT_TYPE]),
            ),
        )
        .route("/v1/payment_intents/{id}/capture", post(capture))
        .route("/v1/payment_intents/{id}/void", post(void))
        .route("/v1/payment_intents/{id}/refund", post(refund))
        .with_state(psp)
}

enum PspError {
    Unavailable,
    Invalid(String),
    Ledger(LedgerError),
}

impl From<LedgerError> for PspError {
    fn from(e: LedgerError) -> Self {
        Self::Ledger(e)
    }
}

impl IntoResponse for PspError {
    fn into_response(self) -> Response {
        let (status, kind, message) = match self {
            Self::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "api_error",
                "the provider is unavailable; retry with the same idempotency key".to_owned(),
            ),
            Self::Invalid(message) => (StatusCode::BAD_REQUEST, "invalid_request_error", message),
            Self::Ledger(e @ LedgerError::NotFound(_)) => {
                (StatusCode::NOT_FOUND, "invalid_request_error", e.to_string())
            }
            Self::Ledger(e @ LedgerError::Refused(Refusal::EmptyRefund)) => {
                (StatusCode::BAD_REQUEST, "invalid_request_error", e.to_string())
            }
            Self::Ledger(
                e @ (LedgerError::Refused(_)
                | LedgerError::KeyReused(_)
                | LedgerError::RefundKeyReused(_)),
            ) => (StatusCode::CONFLICT, "invalid_request_error", e.to_string()),
            // PostgreSQL unreachable, or a lock not granted in time: try again, as with an outage.
            Self::Ledger(LedgerError::Database(e)) if is_transient(&e) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "api_error",
                "the provider is unavailable; retry with the same idempotency key".to_owned(),
            ),
            Self::Ledger(e) => {
                tracing::error!(error = %e, "ledger failure");
                (StatusCode::INTERNAL_SERVER_ERROR, "api_error", "internal error".to_owned())
            }
        };
        (status, Json(json!({"error": {"type": kind, "message": message}}))).into_response()
    }
}

type Answer = Result<(StatusCode, Json<Intent>), PspError>;

fn is_transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => true,
        // 55P03 lock_not_available, 57P01 admin_shutdown, class 08: connection exceptions.
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|code| code == "55P03" || code == "57P01" || code.starts_with("08")),
        _ => false,
    }
}

/// An intent id as this provider makes them; anything else names no intent (404), decided
/// before any query (a NUL byte, say, would be refused by PostgreSQL).
fn intent_id(id: String) -> Result<String, PspError> {
    let valid = id.len() == 35
        && id.starts_with("pi_")
        && id[3..].bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if valid { Ok(id) } else { Err(LedgerError::NotFound(id.chars().take(64).collect()).into()) }
}

/// The merchant's key for a payment: 1–255 characters of `A-Z a-z 0-9 - _ . : @`.
fn valid_key(key: &str) -> bool {
    (1..=255).contains(&key.len())
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:@".contains(&b))
}

impl Psp {
    /// The outage knob: a share of calls fails before doing anything.
    fn answer(&self, call: &str) -> Result<(), PspError> {
        if self.outages.fails(call) { Err(PspError::Unavailable) } else { Ok(()) }
    }

    async fn apply(&self, id: &str, command: Command, refund_key: Option<&str>) -> Answer {
        let intent = self.ledger.apply(id, command, refund_key).await?;
        Ok((StatusCode::OK, Json(intent)))
    }
}

#[derive(Deserialize)]
struct NewIntent {
    order_id: String,
    amount: Money,
    #[serde(default = "default_currency")]
    currency: String,
}

fn default_currency() -> String {
    "eur".into()
}

async fn create(
    State(psp): State<Psp>,
    body: Result<Json<NewIntent>, axum::extract::rejection::JsonRejection>,
) -> Answer {
    let Json(body) = body.map_err(|e| PspError::Invalid(e.body_text()))?;
    if !valid_key(&body.order_id) {
        return Err(PspError::Invalid(
            "order_id must be 1 to 255 characters of A-Z a-z 0-9 - _ . : @".into(),
        ));
    }
    if body.currency.len() != 3 || !body.currency.bytes().all(|b| b.is_ascii_lowercase()) {
        return Err(PspError::Invalid("currency must be three lower-case letters".into()));
    }
    if body.amount.amount().is_zero() {
        return Err(PspError::Invalid("amount must be more than 0".into()));
    }
    psp.answer(&format!("create:{}", body.order_id))?;
    let (intent, created) = psp.ledger.create(&body.order_id, body.amount, &body.currency).await?;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(intent)))
}

async fn read(State(psp): State<Psp>, Path(id): Path<String>) -> Answer {
    let id = intent_id(id)?;
    let intent = psp.ledger.get(&id).await?.ok_or(LedgerError::NotFound(id))?;
    Ok((StatusCode::OK, Json(intent)))
}

#[derive(Deserialize)]
struct Page {
    order_id: Option<String>,
    after: Option<String>,
    limit: Option<i64>,
}

/// The ledger: one order's intent (`?order_id=`), or all of them, oldest first, in pages.
async fn list(
    State(psp): State<Psp>,
    Query(page): Query<Page>,
) -> Result<Json<serde_json::Value>, PspError> {
    if let Some(after) = page.after.clone() {
        intent_id(after).map_err(|_| PspError::Invalid("after must be an intent id".into()))?;
    }
    let intents = match page.order_id {
        Some(order) if !valid_key(&order) => Vec::new(),
        Some(order) => psp.ledger.by_order(&order).await?.into_iter().collect(),
        None => {
            let limit = page.limit.unwrap_or(100).clamp(1, 1000);
            psp.ledger.list(page.after.as_deref(), limit).await?
        }
    };
    Ok(Json(json!({ "data": intents })))
}

/// Asks the (simulated) bank: declined above the limit, else the customer's action is
/// required for a reproducible share of orders, else authorized.
async fn authorize(State(psp): State<Psp>, Path(id): Path<String>) -> Answer {
    let id = intent_id(id)?;
    psp.answer(&format!("authorize:{id}"))?;
    let intent = psp.ledger.get(&id).await?.ok_or_else(|| LedgerError::NotFound(id.clone()))?;
    let answer = if intent.state.amount.amount() > psp.config.decline_above.amount() {
        Err(format!("amount above the card's limit of {}", psp.config.decline_above))
    } else if draw(&intent.order_id, "action") < psp.config.action_required_rate {
        Ok(AuthorizeAnswer::ActionRequired)
    } else {
        Ok(AuthorizeAnswer::Authorized)
    };
    let answer = psp.apply(&id, Command::Authorize(answer), None).await?;
    let customer = match psp.config.confirm_outcome {
        ConfirmOutcome::Succeed => Some(true),
        ConfirmOutcome::Fail => Some(false),
        ConfirmOutcome::Never => None,
    };
    if let (IntentStatus::RequiresAction, Some(succeed)) = (answer.1.state.status, customer) {
        psp.ledger.schedule_confirmation(&id, succeed, psp.config.confirm_delay).await?;
    }
    Ok(answer)
}

#[derive(Deserialize)]
struct Confirmation {
    succeed: bool,
}

/// The customer's answer to a payment that requires action (the dashboard and tests stand in
/// for the customer's bank app).
async fn confirm(
    State(psp): State<Psp>,
    Path(id): Path<String>,
    Json(confirmation): Json<Confirmation>,
) -> Answer {
    let id = intent_id(id)?;
    psp.apply(&id, Command::Confirm(confirmation.succeed), None).await
}

async fn capture(State(psp): State<Psp>, Path(id): Path<String>) -> Answer {
    let id = intent_id(id)?;
    psp.answer(&format!("capture:{id}"))?;
    // An expired authorization is voided first: the capture is then refused (409), as a real
    // provider refuses one whose authorization lapsed.
    if let Some(ttl) = psp.config.authorization_ttl {
        psp.ledger.expire_authorization(&id, ttl).await?;
    }
    psp.apply(&id, Command::Capture, None).await
}

async fn void(State(psp): State<Psp>, Path(id): Path<String>) -> Answer {
    let id = intent_id(id)?;
    psp.answer(&format!("void:{id}"))?;
    psp.apply(&id, Command::Void, None).await
}

#[derive(Deserialize, Default)]
struct RefundRequest {
    amount: Option<Money>,
}

/// Refunds all that is left, or `amount`. Needs an `Idempotency-Key`: a retried refund with the
/// same key is the same refund.
async fn refund(
    State(psp): State<Psp>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Option<Json<RefundRequest>>,
) -> Answer {
    let id = intent_id(id)?;
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .filter(|k| valid_key(k))
        .ok_or_else(|| PspError::Invalid("a refund needs an Idempotency-Key header".into()))?;
    psp.answer(&format!("refund:{id}:{key}"))?;
    let amount = body.map(|Json(b)| b.amount).unwrap_or_default();
    psp.apply(&id, Command::Refund(amount), Some(&format!("{id}:{key}"))).await
}
