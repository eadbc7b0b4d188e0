//! The dashboard in a real browser (Debian's headless Chromium, driven by playwright-core):
//! an order placed in the page completes, another is cancelled from the page, and a
//! screenshot is kept in `test-artifacts/dashboard.png`. `make test` installs Chromium and the
//! npm package; see tests/dashboard/.

use crate::support::{ProviderKnobs, TestApp, jwt_http, test_http};
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
    let token = crate::support::token("customer-web", &[]);
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
    run_script("payments.mjs", &app, "dashboard-payments.png", None).await;
    assert_eq!(app.count("SELECT count(*) FROM orders WHERE status = 'completed'").await, 1);
    assert_eq!(
        app.count("SELECT count(*) FROM orders WHERE error_code = 'payment_declined'").await,
        1
    );
    assert_eq!(app.count("SELECT count(*) FROM payments WHERE status = 'captured'").await, 1);
}

/// Runs the browser script against an app with `http`, and checks what the page did.
async fn browser_run(http: HttpConfig, token: Option<String>, shot: &str) -> TestApp {
    // Slow stock checks, so that the second order can still be cancelled when its button is
    // clicked (an order otherwise completes within milliseconds).
    let simulation =
        SimulationConfig { inventory_delay: Duration::from_millis(4500), ..Default::default() };
    let app = TestApp::spawn_configured(simulation, http).await;
    run_script("dashboard.mjs", &app, shot, token).await;

    // What the page showed is what the database holds.
    assert_eq!(app.count("SELECT count(*) FROM orders WHERE status = 'completed'").await, 1);
    assert_eq!(app.count("SELECT count(*) FROM orders WHERE status = 'cancelled'").await, 1);
    assert_eq!(app.stock("prod-003").await.1, 0, "the cancelled order holds nothing");
    app
}

/// Runs `tests/dashboard/<script>` in node against `app`; it must succeed and keep a screenshot
/// as `test-artifacts/<shot>`.
async fn run_script(script: &str, app: &TestApp, shot: &str, token: Option<String>) {
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
        .args(token)
        .output()
        .await
        .expect("node runs (Node.js is needed for the browser test)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the browser test failed:\n{stdout}\n{stderr}");
    assert!(screenshot.exists(), "a screenshot was kept");
}
