//! The dashboard in a real browser (Debian's headless Chromium, driven by playwright-core):
//! an order placed in the page completes, another is cancelled from the page, and a
//! screenshot is kept in `test-artifacts/dashboard.png`; the operator's page shows an order's
//! timeline and live charts (`test-artifacts/dashboard-operator*.png`). `make test` installs
//! Chromium and the npm package; see tests/dashboard/.

use crate::support::{ProviderKnobs, TestApp, jwt_http, quick_heartbeats, test_http, token};
use orderflow::config::{HttpConfig, SimulationConfig};
use orderflow_psp::ConfirmOutcome;
use std::path::Path;
use std::time::Duration;

#[tokio::test]
async fn an_order_placed_and_another_cancelled_in_the_browser() {
    let app = browser_run(test_http(), None, "dashboard.png").await;
    assert_eq!(
        app.count("SELECT count(*) FROM orders WHERE customer_id = 'customer-001'").await,
        2
    );
}

/// The same with `AUTH_MODE=jwt`: the page asks for a token, keeps it in memory, and the
/// orders are the token's customer's.
#[tokio::test]
async fn with_tokens_required_the_page_asks_for_one_and_orders_are_its_customers() {
    let token = token("customer-web", &[]);
    let app = browser_run(jwt_http(), Some(token), "dashboard-jwt.png").await;
    assert_eq!(
        app.count("SELECT count(*) FROM orders WHERE customer_id = 'customer-web'").await,
        2
    );
}

/// With the payment simulator (`make dev`'s setup): a payment awaiting the customer is
/// confirmed from the page, another refused, as the customer's bank app would.
#[tokio::test]
async fn payments_awaiting_the_customer_are_answered_from_the_page() {
    let knobs = ProviderKnobs {
        action_required_rate: 1.0,
        confirm_outcome: ConfirmOutcome::Never,
        ..ProviderKnobs::default()
    };
    let app = TestApp::spawn_with_provider_and(knobs, Duration::from_secs(60), |payments| {
        payments.dashboard_simulator = true;
    })
    .await;
    run_script("payments.mjs", &app, "dashboard-payments.png", &[]).await;
    assert_eq!(app.count("SELECT count(*) FROM orders WHERE status = 'completed'").await, 1);
    assert_eq!(
        app.count("SELECT count(*) FROM orders WHERE error_code = 'payment_declined'").await,
        1
    );
    assert_eq!(app.count("SELECT count(*) FROM payments WHERE status = 'captured'").await, 1);
}

/// The operator's page, with the payment provider (its webhook events are part of an order's
/// timeline): while the operator watches, an order completes and another is declined (above
/// the card's limit) and compensated; each order's page shows its steps, the compensation, the
/// payment and its events and the Temporal UI link, and the charts have data, the failure's
/// code among them. The product's name is hostile HTML, shown as text.
#[tokio::test]
async fn the_operator_page_shows_an_orders_timeline_and_live_charts() {
    // Every payment waits for the customer, who confirms it in 200 ms: the provider's
    // `payment_intent.authorized` event arrives by webhook.
    let knobs = ProviderKnobs { action_required_rate: 1.0, ..ProviderKnobs::default() };
    let app = TestApp::spawn_with_provider(knobs, Duration::from_secs(60)).await;
    let before = app.stock("prod-001").await;
    name_the_product_in_html(&app).await;
    run_script("operator.mjs", &app, "dashboard-operator.png", &["events"]).await;
    orders_as_the_page_showed(&app).await;
    assert_eq!(
        app.stock("prod-001").await.2,
        before.2 + 1,
        "one sold, the declined order's released"
    );
}

/// With `AUTH_MODE=jwt` the operator's page needs an operator's token: a customer's page says
/// so and shows nothing (no charts, no links, /metrics refused) while it places its orders,
/// which the operator's page then shows.
#[tokio::test]
async fn with_tokens_required_only_an_operator_sees_the_operator_page() {
    let app = TestApp::spawn_configured(SimulationConfig::default(), jwt_http()).await;
    name_the_product_in_html(&app).await;
    let operator = token("operator-on-call", &["operator"]);
    let customer = token("customer-web", &[]);
    run_script(
        "operator.mjs",
        &app,
        "dashboard-operator-jwt.png",
        &["no-events", &operator, &customer],
    )
    .await;
    orders_as_the_page_showed(&app).await;
    assert_eq!(
        app.count("SELECT count(*) FROM orders WHERE customer_id = 'customer-web'").await,
        2
    );
}

/// An order's fields are input: the product's name becomes markup that would run if it were
/// inserted as HTML anywhere (operator.mjs checks that it did not).
async fn name_the_product_in_html(app: &TestApp) {
    app.execute(r#"UPDATE products SET name = '<img src=x onerror="window.__xss=1">' WHERE id = 'prod-001'"#)
        .await;
}

/// One order completed, one failed with `payment_declined`.
async fn orders_as_the_page_showed(app: &TestApp) {
    assert_eq!(app.count("SELECT count(*) FROM orders WHERE status = 'completed'").await, 1);
    assert_eq!(
        app.count(
            "SELECT count(*) FROM orders WHERE status = 'failed' AND error_code = 'payment_declined'"
        )
        .await,
        1
    );
}

/// Runs the browser script against an app with `http`, and checks what the page did.
async fn browser_run(http: HttpConfig, token: Option<String>, shot: &str) -> TestApp {
    // Slow stock checks, so that the second order can still be cancelled when its button is
    // clicked (an order otherwise completes within milliseconds): heartbeated every 1.6 s, the
    // last time 6.4 s in, which leaves the page seconds to spare to refresh and click.
    let simulation =
        SimulationConfig { inventory_delay: Duration::from_millis(8000), ..Default::default() };
    let app = TestApp::spawn_configured(simulation, quick_heartbeats(http)).await;
    run_script("dashboard.mjs", &app, shot, token.as_deref().as_slice()).await;

    // What the page showed is what the database holds.
    assert_eq!(app.count("SELECT count(*) FROM orders WHERE status = 'completed'").await, 1);
    assert_eq!(app.count("SELECT count(*) FROM orders WHERE status = 'cancelled'").await, 1);
    assert_eq!(app.stock("prod-003").await.1, 0, "the cancelled order holds nothing");
    app
}

/// Runs `tests/dashboard/<script>` in node against `app` (with `args` after the address and
/// the screenshot's path); it must succeed and keep a screenshot as `test-artifacts/<shot>`.
async fn run_script(script: &str, app: &TestApp, shot: &str, args: &[&str]) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/dashboard").join(script);
    assert!(
        script.with_file_name("node_modules").join("playwright-core").exists(),
        "run `npm ci --prefix crates/orderflow/tests/dashboard` (make test does) to install playwright-core"
    );
    let screenshot = crate::support::artifacts().join(shot);
    let _ = std::fs::remove_file(&screenshot);
    let output = tokio::process::Command::new("node")
        .arg(&script)
        .arg(&app.address)
        .arg(&screenshot)
        .args(args)
        .output()
        .await
        .expect("node runs (Node.js is needed for the browser test)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the browser test failed:\n{stdout}\n{stderr}");
    assert!(screenshot.exists(), "a screenshot was kept");
}
