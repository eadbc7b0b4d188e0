//! `POST /api/webhooks/payments`: the payment provider's answers to payments that waited for
//! the customer (docs/payments.md). Signed (`Payment-Signature`), delivered at least once,
//! sometimes twice, late or out of order: each event is recognized by its id and handled once,
//! and acknowledged (2xx) only when what it says is safe with Temporal or PostgreSQL, so that
//! the provider's retries are what makes delivery reliable.

use crate::error::{Context, Problem};
use crate::rate_limit::Client;
use crate::{ApiContext, ApiError};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use orderflow_domain::{OrderId, OrderStatus};
use orderflow_providers::payment_provider::IntentStatus;
use orderflow_providers::payment_provider::{CURRENCY, IntentView};
use orderflow_providers::webhook_signature::{SIGNATURE_HEADER, verify};
use orderflow_providers::{PaymentGateway, ProviderError};
use orderflow_store::{EventOutcome, NewPaymentEvent, OrderRow, PaymentChange};
use orderflow_workflow::{PaymentAnswer, PaymentOutcome};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;

/// What the endpoint needs: the secret the provider signs with, and the provider itself (to
/// void an authorization that arrives for an order that has ended).
#[derive(Clone)]
pub struct PaymentWebhooks {
    pub secret: SecretString,
    pub gateway: Arc<dyn PaymentGateway>,
}

/// An event, as the provider sends it.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PaymentEvent {
    /// Unique per event; a repeated delivery repeats it.
    #[schema(
        example = "evt_0193c2a8f1e07c3a9b51d2f4e6a8c0b2",
        min_length = 1,
        max_length = 255,
        pattern = "^[A-Za-z0-9_]+$"
    )]
    pub id: String,
    /// `payment_intent.authorized` or `payment_intent.failed`; other types are acknowledged
    /// and ignored.
    #[serde(rename = "type")]
    #[schema(example = "payment_intent.authorized")]
    pub kind: String,
    pub data: EventPayment,
}

/// The payment the event is about.
#[derive(Debug, Deserialize, ToSchema)]
pub struct EventPayment {
    /// The provider's payment id.
    #[schema(min_length = 1, max_length = 255, pattern = "^[A-Za-z0-9_]+$")]
    pub id: String,
    /// The order's id (the payment's idempotency key).
    pub order_id: String,
}

/// The acknowledgement.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookReceipt {
    pub received: bool,
    /// `delivered` (handed to the order's workflow), `duplicate` (seen before), `voided` (the
    /// order had ended; its authorization was voided), `ignored`, `unknown_order`, or
    /// `contradicted` (the provider's own record of the payment says otherwise: nothing done).
    #[schema(example = "delivered")]
    pub outcome: &'static str,
}

const MAX_ID_LEN: usize = 255;

/// Receive a payment provider's webhook.
///
/// Signed by the provider: `Payment-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret,
/// "<t>.<raw body>")>`, within 5 minutes. A missing or wrong signature is a 400 and changes
/// nothing. 200 once the event is safely handled; a repeated event id is acknowledged and
/// ignored. 503 when it could not be handled now: the provider retries.
#[utoipa::path(
    post,
    path = "/api/webhooks/payments",
    tag = "payments",
    params(("Payment-Signature" = String, Header, description = "t=<unix seconds>,v1=<hex HMAC-SHA256>, one v1 per secret in use (rotation)", pattern = r"^t=[0-9]{1,19}(,v1=[0-9a-f]{64}){1,8}$")),
    request_body(content = PaymentEvent, content_type = "application/json"),
    responses(
        (status = 200, description = "Received (or received before)", body = WebhookReceipt),
        (status = 400, description = "Missing or wrong signature, or not an event", body = Problem, content_type = "application/problem+json"),
        (status = 413, response = crate::responses::TooLarge),
        (status = 429, response = crate::responses::RateLimited),
        (status = 503, description = "Not handled now (Temporal or the database unreachable, or webhooks not configured); retry", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn payment_webhook(
    State(ctx): State<ApiContext>,
    client: Client,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<WebhookReceipt>, ApiError> {
    ctx.webhook_limits.check_client(&client)?;
    let Some(webhooks) = &ctx.webhooks else {
        return Err(ApiError::Unavailable(
            "Payment webhooks are not configured here (PAYMENT_WEBHOOK_SECRET).".into(),
        ));
    };
    let signature = headers
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| refused("the Payment-Signature header is missing"))?;
    let now = chrono::Utc::now().timestamp();
    verify(webhooks.secret.expose_secret().as_bytes(), signature, &body, now)
        .map_err(|e| refused(&format!("the signature does not verify: {e}")))?;
    let event: PaymentEvent = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("Not a payment event: {e}")))?;
    // Ids go into logs, the database and the provider's URL: letters, digits and `_` only.
    let well_formed = |id: &String| {
        (1..=MAX_ID_LEN).contains(&id.len())
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    };
    if ![&event.id, &event.data.id].into_iter().all(well_formed) {
        return Err(ApiError::BadRequest(format!(
            "Event and payment ids must be 1 to {MAX_ID_LEN} letters, digits or underscores."
        )));
    }
    let outcome = receive(&ctx, webhooks, event).await?;
    metrics::counter!("orderflow_payment_webhooks_total", "outcome" => outcome).increment(1);
    Ok(Json(WebhookReceipt { received: true, outcome }))
}

fn refused(why: &str) -> ApiError {
    metrics::counter!("orderflow_payment_webhooks_total", "outcome" => "bad_signature")
        .increment(1);
    // Anyone can send these: logged at most a few a minute, counted always.
    crate::log_throttle::warn_throttled(
        crate::log_throttle::Warning::Refused,
        &format!("refused a payment webhook: {why}"),
    );
    ApiError::BadRequest(format!("Refused: {why}."))
}

/// What an event claims about its payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Claim {
    Authorized,
    Failed,
}

async fn receive(
    ctx: &ApiContext,
    webhooks: &PaymentWebhooks,
    event: PaymentEvent,
) -> Result<&'static str, ApiError> {
    let claim = match event.kind.as_str() {
        "payment_intent.authorized" => Claim::Authorized,
        "payment_intent.failed" => Claim::Failed,
        other => {
            tracing::info!(event_id = %event.id, r#type = other, "ignored a payment event of a type OrderFlow does not use");
            return Ok(EventOutcome::Ignored.as_str());
        }
    };
    let store = &ctx.store;
    if store.payment_event_seen(&event.id).await.context("reading payment events")? {
        return Ok("duplicate");
    }
    let order = uuid::Uuid::try_parse(&event.data.order_id).ok().map(OrderId::from_uuid);
    let received = NewPaymentEvent {
        event_id: &event.id,
        order,
        r#type: &event.kind,
        payment_id: &event.data.id,
    };
    let row = match order {
        Some(order) => store.order(order).await.context("reading the event's order")?,
        None => None,
    };
    let (Some(order), Some(row)) = (order, row) else {
        crate::log_throttle::warn_throttled(
            crate::log_throttle::Warning::UnknownOrder,
            &format!(
                "a payment event for an order this service does not know (event {}, order {})",
                event.id, event.data.order_id
            ),
        );
        let outcome = EventOutcome::UnknownOrder;
        store
            .record_payment_event(received, outcome, PaymentChange::Unchanged)
            .await
            .context("recording a payment event")?;
        return Ok(outcome.as_str());
    };
    // A webhook is a hint, not the truth: what the provider's own API says of the payment is
    // what counts (a leaked secret, an event replayed from another environment or a provider's
    // bug must not move money or an order). Contradicted events are acknowledged, so that the
    // sender stops, and acted on never; they are not remembered, so an event id cannot be
    // spent by a forgery before the genuine event arrives.
    let intent = match webhooks.gateway.lookup(&event.data.id).await {
        Ok(intent) => intent,
        Err(ProviderError::Unavailable(e)) => {
            tracing::warn!(error = %e, "could not read a payment from the provider to check its event");
            return Err(ApiError::Unavailable(
                "The payment provider could not be reached to check the event; retry.".into(),
            ));
        }
        Err(e) => return Ok(contradicted(&event, &format!("the provider does not know it: {e}"))),
    };
    match check(claim, &event, &intent, order, &row) {
        Verdict::Agrees => {}
        Verdict::NotYet(state) => {
            // A genuine event can arrive before the provider's API shows its effect (an
            // eventually consistent provider): not acted on now, and retried by the provider.
            return Err(ApiError::Unavailable(format!(
                "The provider does not show this payment's new state yet (it is {state:?}); \
                 retry."
            )));
        }
        Verdict::Contradicted(why) => return Ok(contradicted(&event, &why)),
    }
    let outcome = match claim {
        Claim::Authorized => PaymentOutcome::Authorized,
        Claim::Failed => PaymentOutcome::Failed {
            reason: intent.failure_reason.clone().unwrap_or_else(|| "declined".into()),
        },
    };

    // The slow part first, outside any transaction: the signal (its request id is the event
    // id, so a repeat is recorded once, and the workflow takes the first answer) or the void
    // (idempotent at the provider). The event is remembered only once that is done, so a
    // failure here is retried by the provider and handled afresh.
    let authorized = outcome == PaymentOutcome::Authorized;
    let (done, change) = if row.status.is_terminal() {
        late(webhooks, &event, row.status, authorized).await?
    } else {
        let reason = match &outcome {
            PaymentOutcome::Failed { reason } => Some(reason.clone()),
            PaymentOutcome::Authorized => None,
        };
        let answer = PaymentAnswer {
            event_id: event.id.clone(),
            payment_id: event.data.id.clone(),
            outcome,
        };
        if ctx.orchestrator.signal_payment(order.workflow_id(), answer).await? {
            let change = PaymentChange::Answered { authorized, reason: reason.as_deref() };
            let recorded = store.record_payment_event(received, EventOutcome::Delivered, change);
            // Not recorded: a concurrent delivery of the same event was, first.
            return Ok(if recorded.await.context("recording a payment event")? {
                EventOutcome::Delivered.as_str()
            } else {
                "duplicate"
            });
        }
        // Ended between the read and the signal: as late as any other.
        let ended = store.order(order).await.context("reading the event's order")?;
        late(webhooks, &event, ended.map_or(OrderStatus::Failed, |row| row.status), authorized)
            .await?
    };
    let recorded = store.record_payment_event(received, done, change);
    Ok(if recorded.await.context("recording a payment event")? {
        done.as_str()
    } else {
        "duplicate"
    })
}

/// What the provider's record of the payment says of an event.
enum Verdict {
    Agrees,
    /// The payment still awaits the decision the event reports (it may show it later).
    NotYet(IntentStatus),
    /// It can never be true: another payment, another order, another amount, or a state the
    /// payment cannot reach from where it is.
    Contradicted(String),
}

/// Checks the event against the provider's record of its payment: it must be the payment the
/// event names, the order's (its order, the payment it recorded, its total, the shop's
/// currency), and in the state the event claims.
fn check(
    claim: Claim,
    event: &PaymentEvent,
    intent: &IntentView,
    order: OrderId,
    row: &OrderRow,
) -> Verdict {
    if intent.id != event.data.id {
        return Verdict::Contradicted(format!("the provider answered for payment {}", intent.id));
    }
    if intent.order_id != order.to_string() {
        return Verdict::Contradicted(format!("the payment is order {}'s", intent.order_id));
    }
    if row.payment_id.as_ref().is_some_and(|recorded| *recorded != intent.id) {
        return Verdict::Contradicted("the order's payment is another".into());
    }
    if intent.amount.amount() != row.total_amount || intent.currency != CURRENCY {
        return Verdict::Contradicted(format!(
            "the payment is of {} {}, the order's total {} {CURRENCY}",
            intent.amount, intent.currency, row.total_amount
        ));
    }
    use IntentStatus::*;
    match (claim, intent.status) {
        (Claim::Authorized, Authorized | Captured) | (Claim::Failed, Failed) => Verdict::Agrees,
        (_, RequiresAuthorization | RequiresAction) => Verdict::NotYet(intent.status),
        (_, status) => {
            Verdict::Contradicted(format!("the provider says the payment is {status:?}"))
        }
    }
}

/// Acknowledges an event the provider's record contradicts, without acting on it: counted (as
/// every outcome is, by the handler) and logged (at most a few lines a minute, however many
/// arrive).
fn contradicted(event: &PaymentEvent, why: &str) -> &'static str {
    crate::log_throttle::warn_throttled(
        crate::log_throttle::Warning::Contradicted,
        &format!(
            "ignored a signed payment event that the provider contradicts (event {}, payment \
             {}, order {}): {why}",
            event.id, event.data.id, event.data.order_id
        ),
    );
    "contradicted"
}

/// An answer for an order that has ended. An authorization that arrives after a failed or
/// cancelled order gave up on it would hold the customer's money for nothing: it is voided.
/// (A completed order's payment was captured; its answer changes nothing.)
async fn late(
    webhooks: &PaymentWebhooks,
    event: &PaymentEvent,
    status: OrderStatus,
    authorized: bool,
) -> Result<(EventOutcome, PaymentChange<'static>), ApiError> {
    if !authorized || status == OrderStatus::Completed {
        return Ok((EventOutcome::Ignored, PaymentChange::Unchanged));
    }
    match webhooks.gateway.void(&event.data.id).await {
        Ok(()) => {
            tracing::info!(event_id = %event.id, payment_id = %event.data.id, "voided an authorization that arrived after its order ended");
            Ok((EventOutcome::Voided, PaymentChange::Voided))
        }
        // Captured, refunded or voided already: nothing is held.
        Err(ProviderError::Refused(_)) => Ok((EventOutcome::Ignored, PaymentChange::Unchanged)),
        Err(e) => {
            tracing::warn!(error = %e, payment_id = %event.data.id, "could not void a late authorization");
            Err(ApiError::Unavailable(
                "The payment provider could not be reached to void a late authorization; retry."
                    .into(),
            ))
        }
    }
}
