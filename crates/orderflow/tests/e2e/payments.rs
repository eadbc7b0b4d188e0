//! Payments as providers do them (docs/payments.md), end to end: the real service, the
//! simulated provider over HTTP with its ledger, and its signed webhooks.

use crate::support::{ProviderKnobs, TestApp, WEBHOOK_SECRET, readme_order};
use orderflow_domain::{ErrorCode, OrderStatus, Step, StepStatus, WorkflowId};
use orderflow_providers::webhook_signature::{SIGNATURE_HEADER, sign};
use orderflow_psp::ConfirmOutcome;
use serde_json::{Value, json};
use std::time::Duration;

const MINUTE: Duration = Duration::from_secs(60);

fn needing_confirmation(outcome: ConfirmOutcome) -> ProviderKnobs {
    ProviderKnobs {
        action_required_rate: 1.0,
        confirm_outcome: outcome,
        ..ProviderKnobs::default()
    }
}

async fn detail(app: &TestApp, order: WorkflowId) -> Value {
    let (code, body) = app.get_json(&format!("/api/orders/{}", order.order_id())).await;
    assert_eq!(code, 200, "{body}");
    body
}

async fn intent(app: &TestApp, order: WorkflowId) -> Value {
    app.provider.as_ref().unwrap().intent_of(&order.order_id().to_string()).await
}

/// Posts `body` to the webhook endpoint, signed with `secret` at `timestamp`.
async fn post_webhook(app: &TestApp, body: &Value, secret: &str, timestamp: i64) -> (u16, Value) {
    let raw = body.to_string();
    let response = app
        .http
        .post(app.url("/api/webhooks/payments"))
        .header("content-type", "application/json")
        .header(SIGNATURE_HEADER, sign(secret.as_bytes(), timestamp, raw.as_bytes()))
        .body(raw)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

/// Waits until the order waits for the customer's confirmation.
async fn until_awaiting(app: &TestApp, order: WorkflowId) {
    let path = format!("/api/orders/{}", order.order_id());
    for _ in 0..200 {
        let (code, body) = app.get_json(&path).await;
        if code == 200 && body["current_step"] == "await_payment" {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{order} never awaited its payment: {}", detail(app, order).await);
}

fn event(id: &str, kind: &str, payment_id: &str, order_id: &str) -> Value {
    json!({"id": id, "type": kind, "created": 0,
           "data": {"id": payment_id, "order_id": order_id, "status": "authorized"}})
}

fn now() -> i64 {
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    since_epoch.unwrap().as_secs() as i64
}

#[tokio::test]
async fn an_order_is_authorized_then_captured_at_the_provider_when_confirmed() {
    let app = TestApp::spawn_with_provider(ProviderKnobs::default(), MINUTE).await;
    let order = app.place(&readme_order()).await;
    let state = app.outcome(order).await;
    assert_eq!(state.status, OrderStatus::Completed);
    assert!(
        !state.step_history.iter().any(|r| r.step == Step::AwaitPayment),
        "an instant authorization needs no wait"
    );

    let intent = intent(&app, order).await;
    assert_eq!(intent["status"], "captured");
    assert_eq!(
        (intent["amount"].as_str(), intent["captured"].as_str()),
        (Some("999.99"), Some("999.99"))
    );
    assert_eq!(intent["refunded"], "0.00");
    let payment = &detail(&app, order).await["payment"];
    assert_eq!(payment["status"], "captured");
    assert_eq!(payment["payment_id"], intent["id"]);
    assert_eq!(
        (payment["captured"].as_str(), payment["refunded"].as_str()),
        (Some("999.99"), Some("0.00"))
    );
}

#[tokio::test]
async fn a_payment_the_customer_confirms_completes_the_order_by_signed_webhook_once() {
    // Every webhook is delivered twice: the second is acknowledged and ignored.
    let knobs = ProviderKnobs {
        webhook_duplicate_rate: 1.0,
        ..needing_confirmation(ConfirmOutcome::Succeed)
    };
    let app = TestApp::spawn_with_provider(knobs, MINUTE).await;
    let order = app.place(&readme_order()).await;
    let state = app.outcome(order).await;
    assert_eq!(state.status, OrderStatus::Completed, "{state:?}");
    let waited = state.step_history.iter().find(|r| r.step == Step::AwaitPayment);
    assert_eq!(waited.map(|r| r.status), Some(StepStatus::Completed));
    app.replay(order, "confirmed_by_the_customer").await;

    assert_eq!(intent(&app, order).await["status"], "captured");
    let detail = detail(&app, order).await;
    assert!(detail["hold_expires_at"].is_string(), "{detail}");
    let events = detail["payment"]["events"].as_array().unwrap().clone();
    assert_eq!(events.len(), 1, "one event, however often delivered: {events:?}");
    assert_eq!(
        (&events[0]["type"], &events[0]["outcome"]),
        (&json!("payment_intent.authorized"), &json!("delivered"))
    );
    // The duplicate arrives 50 ms after the original: once the provider has had both
    // acknowledged, the event is still recorded once.
    let provider = app.provider.as_ref().unwrap();
    assert_eq!(provider.all_webhooks_delivered().await, 2, "the event was sent twice");
    assert_eq!(app.count("SELECT count(*) FROM payment_events").await, 1);
}

#[tokio::test]
async fn a_payment_the_customer_refuses_fails_the_order_and_releases_the_stock() {
    let app =
        TestApp::spawn_with_provider(needing_confirmation(ConfirmOutcome::Fail), MINUTE).await;
    let before = app.stock("prod-001").await;
    let order = app.place(&readme_order()).await;
    let state = app.outcome(order).await;
    assert_eq!(
        (state.status, state.error_code),
        (OrderStatus::Failed, Some(ErrorCode::PaymentDeclined))
    );
    app.replay(order, "refused_by_the_customer").await;
    assert_eq!(intent(&app, order).await["status"], "failed");
    assert_eq!(detail(&app, order).await["payment"]["status"], "failed");
    assert_eq!(app.stock("prod-001").await, before);
}

#[tokio::test]
async fn an_unconfirmed_payment_times_out_voided_and_a_late_authorization_is_voided_too() {
    let timeout = Duration::from_secs(2);
    let app =
        TestApp::spawn_with_provider(needing_confirmation(ConfirmOutcome::Never), timeout).await;
    let before = app.stock("prod-001").await;
    let order = app.place(&readme_order()).await;
    let state = app.outcome(order).await;
    assert_eq!(
        (state.status, state.error_code),
        (OrderStatus::Failed, Some(ErrorCode::PaymentTimeout))
    );
    app.replay(order, "payment_timeout").await;
    let intent = intent(&app, order).await;
    assert_eq!(intent["status"], "voided");
    assert_eq!(app.stock("prod-001").await, before, "the hold is released");
    let detail = detail(&app, order).await;
    assert_eq!(detail["payment"]["status"], "voided");
    assert_eq!(detail["error_code"], "payment_timeout");

    // The customer confirms after the deadline: the provider refuses (voided), and an
    // authorization event arriving anyway is contradicted by the provider's record (voided):
    // acknowledged, nothing captured.
    let provider = app.provider.as_ref().unwrap();
    assert_eq!(provider.confirm(intent["id"].as_str().unwrap(), true).await, 409);
    let late = event(
        "evt_late_1",
        "payment_intent.authorized",
        intent["id"].as_str().unwrap(),
        &order.order_id().to_string(),
    );
    let (code, body) = post_webhook(&app, &late, WEBHOOK_SECRET, now()).await;
    assert_eq!((code, body["outcome"].as_str()), (200, Some("contradicted")), "{body}");
    let after = app.provider.as_ref().unwrap().intent_of(&order.order_id().to_string()).await;
    assert_eq!(
        (after["status"].as_str(), after["captured"].as_str()),
        (Some("voided"), Some("0.00"))
    );
    assert_eq!(app.status(order).await["status"], "failed");
}

#[tokio::test]
async fn a_cancel_while_the_payment_is_awaited_voids_it_at_once() {
    let app =
        TestApp::spawn_with_provider(needing_confirmation(ConfirmOutcome::Never), MINUTE).await;
    let before = app.stock("prod-001").await;
    let order = app.place(&readme_order()).await;
    until_awaiting(&app, order).await;
    assert_eq!(detail(&app, order).await["current_step"], "await_payment");
    assert_eq!(app.status(order).await["status"], "payment");
    let (code, body) = app.cancel(order).await;
    assert_eq!(code, 202, "{body}");
    let state = app.outcome(order).await;
    assert_eq!(state.status, OrderStatus::Cancelled);
    app.replay(order, "cancelled_while_awaiting_payment").await;
    assert_eq!(intent(&app, order).await["status"], "voided");
    assert_eq!(app.stock("prod-001").await, before);
}

#[tokio::test]
async fn webhooks_without_a_valid_signature_are_refused_and_change_nothing() {
    let app =
        TestApp::spawn_with_provider(needing_confirmation(ConfirmOutcome::Never), MINUTE).await;
    let order = app.place(&readme_order()).await;
    until_awaiting(&app, order).await;
    let payment_id = intent(&app, order).await["id"].as_str().unwrap().to_owned();
    let forged = event(
        "evt_forged",
        "payment_intent.authorized",
        &payment_id,
        &order.order_id().to_string(),
    );

    let unsigned = app
        .http
        .post(app.url("/api/webhooks/payments"))
        .header("content-type", "application/json")
        .body(forged.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 400);
    assert_eq!(post_webhook(&app, &forged, "whsec_guessed", now()).await.0, 400);
    assert_eq!(post_webhook(&app, &forged, WEBHOOK_SECRET, now() - 360).await.0, 400, "too old");
    assert_eq!(
        post_webhook(&app, &forged, WEBHOOK_SECRET, now() + 360).await.0,
        400,
        "from the future"
    );
    // The body is part of what is signed: a signature of another body does not pass.
    let signature = sign(WEBHOOK_SECRET.as_bytes(), now(), b"{}");
    let tampered = app
        .http
        .post(app.url("/api/webhooks/payments"))
        .header(SIGNATURE_HEADER, signature)
        .body(forged.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(tampered.status(), 400);

    // Refused before anything was recorded or signalled (the 400s come after the checks).
    assert_eq!(app.count("SELECT count(*) FROM payment_events").await, 0);
    assert_eq!(app.status(order).await["status"], "payment", "still waiting");
    assert_eq!(detail(&app, order).await["payment"]["status"], "requires_action");

    // Signed events for orders this service does not know are acknowledged (a provider
    // retrying forever helps nobody); a repeated event id is acknowledged and ignored.
    let stranger = event("evt_stranger", "payment_intent.authorized", "pi_x", "not-an-order");
    let (code, body) = post_webhook(&app, &stranger, WEBHOOK_SECRET, now()).await;
    assert_eq!((code, body["outcome"].as_str()), (200, Some("unknown_order")));
    let (code, body) = post_webhook(&app, &stranger, WEBHOOK_SECRET, now()).await;
    assert_eq!((code, body["outcome"].as_str()), (200, Some("duplicate")));
    let (code, _) = post_webhook(&app, &json!({"id": 1}), WEBHOOK_SECRET, now()).await;
    assert_eq!(code, 400, "signed, but not an event");

    // Correctly signed but false (the provider's intent still awaits the customer): checked
    // against the provider, not acted on (503: were it genuine but early, the provider would
    // retry until its API agrees).
    let false_news =
        event("evt_false", "payment_intent.authorized", &payment_id, &order.order_id().to_string());
    let (code, body) = post_webhook(&app, &false_news, WEBHOOK_SECRET, now()).await;
    assert_eq!(code, 503, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("does not show"), "{body}");
    assert_eq!(app.status(order).await["status"], "payment", "still waiting");

    // The customer really confirms: the provider's own event completes the order.
    let provider = app.provider.as_ref().unwrap();
    assert_eq!(provider.confirm(&payment_id, true).await, 200);
    assert_eq!(app.outcome(order).await.status, OrderStatus::Completed);
    assert_eq!(intent(&app, order).await["status"], "captured");
}

#[tokio::test]
async fn provider_outages_are_retried_and_never_charge_twice() {
    let knobs = ProviderKnobs { outage_rate: 0.4, ..ProviderKnobs::default() };
    let app = TestApp::spawn_with_provider(knobs, MINUTE).await;
    let mut orders = Vec::new();
    for _ in 0..8 {
        orders.push(app.place(&readme_order()).await);
    }
    for order in orders {
        let state = app.outcome(order).await;
        let intents =
            app.provider.as_ref().unwrap().intents_of(&order.order_id().to_string()).await;
        match state.status {
            OrderStatus::Completed => {
                assert_eq!(intents.len(), 1, "{intents:?}");
                assert_eq!(intents[0]["captured"], "999.99");
            }
            // Retries ran out on the authorization: failed, with nothing held or taken.
            OrderStatus::Failed => {
                assert_eq!(state.error_code, Some(ErrorCode::PaymentFailed));
                for intent in &intents {
                    assert!(
                        ["voided", "failed", "requires_authorization"]
                            .contains(&intent["status"].as_str().unwrap()),
                        "{intent}"
                    );
                    assert_eq!(intent["captured"], "0.00");
                }
            }
            other => panic!("{order} ended {other}"),
        }
    }
}

/// Issue 23's attack, replayed: a correctly signed "authorized" for a payment the provider has
/// not authorized completes nothing, and when the customer then refuses, the order fails with
/// nothing captured.
#[tokio::test]
async fn a_signed_false_authorization_completes_nothing() {
    let app =
        TestApp::spawn_with_provider(needing_confirmation(ConfirmOutcome::Never), MINUTE).await;
    let before = app.stock("prod-001").await;
    let order = app.place(&readme_order()).await;
    until_awaiting(&app, order).await;
    let payment_id = intent(&app, order).await["id"].as_str().unwrap().to_owned();
    let id = order.order_id().to_string();
    // The provider still shows the payment awaiting the customer: not acted on, and answered
    // 503 (a genuine event that outran the provider's API would be retried).
    for (event_id, kind) in
        [("evt_x", "payment_intent.authorized"), ("evt_y", "payment_intent.failed")]
    {
        let (code, body) =
            post_webhook(&app, &event(event_id, kind, &payment_id, &id), WEBHOOK_SECRET, now())
                .await;
        assert_eq!(code, 503, "{kind}: {body}");
        assert!(body["detail"].as_str().unwrap().contains("does not show"), "{body}");
    }
    assert_eq!(app.status(order).await["status"], "payment", "still waiting for the customer");
    assert_eq!(app.count("SELECT count(*) FROM payment_events").await, 0, "no event id spent");

    let provider = app.provider.as_ref().unwrap();
    assert_eq!(provider.confirm(&payment_id, false).await, 200);
    let state = app.outcome(order).await;
    assert_eq!(
        (state.status, state.error_code),
        (OrderStatus::Failed, Some(ErrorCode::PaymentDeclined))
    );
    let intent = intent(&app, order).await;
    assert_eq!(
        (intent["status"].as_str(), intent["captured"].as_str()),
        (Some("failed"), Some("0.00"))
    );
    assert_eq!(app.stock("prod-001").await, before, "nothing sold");
    // Now the authorization can never be true: acknowledged as contradicted, nothing done.
    let late_lie = event("evt_z", "payment_intent.authorized", &payment_id, &id);
    let (code, body) = post_webhook(&app, &late_lie, WEBHOOK_SECRET, now()).await;
    assert_eq!((code, body["outcome"].as_str()), (200, Some("contradicted")), "{body}");
}

/// A signed event naming an ended order and another customer's waiting payment voids nothing:
/// the payment is not the order's.
#[tokio::test]
async fn an_event_naming_another_orders_payment_voids_nothing() {
    let app =
        TestApp::spawn_with_provider(needing_confirmation(ConfirmOutcome::Never), MINUTE).await;
    let ended = app.place(&readme_order()).await;
    let (waiting, other) = (app.place(&readme_order()).await, app.place(&readme_order()).await);
    for order in [ended, waiting, other] {
        until_awaiting(&app, order).await;
    }
    assert_eq!(app.cancel(ended).await.0, 202);
    assert_eq!(app.outcome(ended).await.status, OrderStatus::Cancelled);
    let theirs = intent(&app, waiting).await["id"].as_str().unwrap().to_owned();
    // Named by an ended order (believed, it would be voided), and by another waiting one.
    for (event_id, order) in [("evt_ended", ended), ("evt_other", other)] {
        let lie =
            event(event_id, "payment_intent.authorized", &theirs, &order.order_id().to_string());
        let (code, body) = post_webhook(&app, &lie, WEBHOOK_SECRET, now()).await;
        assert_eq!((code, body["outcome"].as_str()), (200, Some("contradicted")), "{body}");
    }
    assert_eq!(intent(&app, waiting).await["status"], "requires_action", "not voided");
    // Its own customer confirms: it completes.
    assert_eq!(app.provider.as_ref().unwrap().confirm(&theirs, true).await, 200);
    assert_eq!(app.outcome(waiting).await.status, OrderStatus::Completed);
}

/// Confirmation is the point of no return, and the money is taken before the order completes:
/// a capture the provider refuses for good (here: the authorization expired) fails the order
/// with `payment_failed`, gives its stock back and tells the customer. No order is `completed`
/// without its money.
#[tokio::test]
async fn a_capture_refused_for_good_fails_the_order_and_gives_everything_back() {
    let knobs =
        ProviderKnobs { authorization_ttl: Some(Duration::ZERO), ..ProviderKnobs::default() };
    let app = TestApp::spawn_with_provider(knobs, MINUTE).await;
    let before = app.stock("prod-001").await;
    let order = app.place(&readme_order()).await;
    let state = app.outcome(order).await;
    assert_eq!(
        (state.status, state.error_code),
        (OrderStatus::Failed, Some(ErrorCode::PaymentFailed)),
        "{state:?}"
    );
    let confirm = state.step_history.iter().find(|r| r.step == Step::ConfirmOrder).unwrap();
    assert_eq!(confirm.status, StepStatus::Failed);
    let intent = intent(&app, order).await;
    assert_eq!(
        (intent["status"].as_str(), intent["captured"].as_str()),
        (Some("voided"), Some("0.00"))
    );
    assert_eq!(app.stock("prod-001").await, before, "the stock is back");
    assert_eq!(app.status(order).await["status"], "failed");
    assert_eq!(
        app.count("SELECT count(*) FROM notifications WHERE kind = 'order_failed'").await,
        1,
        "the customer is told"
    );
    // Counted for the operators (the counter is the whole test process's: at least this one).
    let (_, metrics) = app.get_text("/metrics").await;
    let refusals = metrics
        .lines()
        .find_map(|l| l.strip_prefix("orderflow_capture_refusals_total "))
        .and_then(|v| v.trim().parse::<f64>().ok());
    assert!(refusals.is_some_and(|n| n >= 1.0), "counted: {refusals:?}");
}

/// Cancels racing the customer's answer, many times: every 202 ends cancelled and every 409
/// does not (issue 23: a cancel that took effect was sometimes answered 409).
#[tokio::test]
async fn cancels_racing_the_customers_answer_are_answered_truthfully() {
    let knobs = ProviderKnobs {
        confirm_delay: Duration::from_millis(300),
        ..needing_confirmation(ConfirmOutcome::Succeed)
    };
    let app = TestApp::spawn_with_provider(knobs, MINUTE).await;
    let app = &app;
    // From well before the customer's answer (300 ms after the authorization is asked for) to
    // well after the order completes, so that both answers occur whatever the machine's speed,
    // and many land on the answer itself.
    let races = (0..24u64).map(|i| async move {
        let order = app.place(&readme_order()).await;
        tokio::time::sleep(Duration::from_millis(100 * i)).await;
        (order, app.cancel(order).await)
    });
    let answers = futures::future::join_all(races).await;
    let (mut accepted, mut refused) = (0, 0);
    for (order, (code, body)) in answers {
        let ended = app.outcome(order).await.status;
        match code {
            202 => {
                accepted += 1;
                assert_eq!(ended, OrderStatus::Cancelled, "{order}: 202 but {ended}: {body}");
            }
            409 => {
                refused += 1;
                assert_ne!(ended, OrderStatus::Cancelled, "{order}: 409 but cancelled: {body}");
            }
            other => panic!("{order}: {other} {body}"),
        }
    }
    println!("{accepted} cancellations accepted, {refused} refused");
    assert!(accepted > 0 && refused > 0, "the cancels did not straddle the answer");
}
