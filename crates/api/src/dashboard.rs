//! The orders dashboard: one page, no build step, served from the binary.

use crate::ApiContext;
use crate::edges::CONTENT_SECURITY_POLICY;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse};

const PAGE: &str = include_str!("../static/dashboard.html");
const SCRIPT: &str = include_str!("../static/dashboard.js");

/// Live orders and stock, a form to place an order, cancel buttons, links to Temporal's UI;
/// for operators, an order's page (`/dashboard#operator/{order_id}`: its steps, retries,
/// compensations and payment) and live charts drawn from `/metrics`.
#[utoipa::path(
    get,
    path = "/dashboard",
    tag = "operations",
    responses((status = 200, description = "The dashboard (HTML)", body = String, content_type = "text/html"))
)]
pub async fn page(State(ctx): State<ApiContext>) -> impl IntoResponse {
    let simulator = ctx.payment_simulator_url.as_deref().map(escape).unwrap_or_default();
    // The policy names the provider's origin (a URL's path or credentials have no place there).
    let origin = ctx
        .payment_simulator_url
        .as_deref()
        .and_then(|url| reqwest::Url::parse(url).ok())
        .map(|url| escape(&url.origin().ascii_serialization()))
        .unwrap_or_default();
    let page = PAGE
        .replace("{{TEMPORAL_UI_URL}}", &escape(&ctx.temporal_ui_url))
        .replace("{{TEMPORAL_NAMESPACE}}", &escape(ctx.orchestrator.namespace()))
        .replace("{{AUTH_MODE}}", if ctx.auth.is_off() { "off" } else { "jwt" })
        .replace("{{PAYMENT_SIMULATOR_URL}}", &simulator);
    // The page may also call the payment simulator, and nothing else.
    let policy = match origin.as_str() {
        "" => CONTENT_SECURITY_POLICY.to_owned(),
        origin => CONTENT_SECURITY_POLICY
            .replace("connect-src 'self'", &format!("connect-src 'self' {origin}")),
    };
    let policy =
        HeaderValue::from_str(&policy).unwrap_or(HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    ([(header::CONTENT_SECURITY_POLICY, policy)], Html(page))
}

/// The dashboard's script, a file of its own so that the page's Content-Security-Policy can
/// forbid inline scripts.
pub async fn script() -> impl axum::response::IntoResponse {
    ([(axum::http::header::CONTENT_TYPE, "text/javascript; charset=utf-8")], SCRIPT)
}

/// The values go into an HTML attribute: keep them inert.
fn escape(value: &str) -> String {
    value.chars().filter(|c| c.is_ascii_alphanumeric() || ":/._-?=&%".contains(*c)).collect()
}
