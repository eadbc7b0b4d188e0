//! The orders dashboard: one page, no build step, served from the binary.

use crate::ApiContext;
use axum::extract::State;
use axum::response::Html;

const PAGE: &str = include_str!("../static/dashboard.html");
const SCRIPT: &str = include_str!("../static/dashboard.js");

/// Live orders and stock, a form to place an order, cancel buttons, links to Temporal's UI.
#[utoipa::path(
    get,
    path = "/dashboard",
    tag = "operations",
    responses((status = 200, description = "The dashboard (HTML)", body = String, content_type = "text/html"))
)]
pub async fn page(State(ctx): State<ApiContext>) -> Html<String> {
    Html(
        PAGE.replace("{{TEMPORAL_UI_URL}}", &escape(&ctx.temporal_ui_url))
            .replace("{{TEMPORAL_NAMESPACE}}", &escape(ctx.orchestrator.namespace()))
            .replace("{{AUTH_MODE}}", if ctx.auth.is_off() { "off" } else { "jwt" }),
    )
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
