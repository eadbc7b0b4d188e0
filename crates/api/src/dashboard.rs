//! The orders dashboard: one page and its ES modules, no build step, served from the binary.

use crate::edges::CONTENT_SECURITY_POLICY;
use crate::{ApiContext, ApiError};
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse};

const PAGE: &str = include_str!("../static/dashboard.html");
/// The page's scripts, ES modules by name (`/dashboard/{name}`); `main.js` is the entry.
const MODULES: [(&str, &str); 7] = [
    ("main.js", include_str!("../static/dashboard/main.js")),
    ("api.js", include_str!("../static/dashboard/api.js")),
    ("dom.js", include_str!("../static/dashboard/dom.js")),
    ("orders.js", include_str!("../static/dashboard/orders.js")),
    ("operator.js", include_str!("../static/dashboard/operator.js")),
    ("metrics.js", include_str!("../static/dashboard/metrics.js")),
    ("charts.js", include_str!("../static/dashboard/charts.js")),
];

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

/// One of the dashboard's scripts (`/dashboard/main.js` and the modules it imports), files of
/// their own so that the page's Content-Security-Policy can forbid inline scripts.
pub async fn module(
    name: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let unknown = || ApiError::NotFound("The dashboard has no such script.".into());
    let Path(name) = name.map_err(|_| unknown())?;
    let (_, source) = MODULES.iter().find(|(module, _)| *module == name).ok_or_else(unknown)?;
    Ok(([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], *source))
}

/// The values go into an HTML attribute: keep them inert.
fn escape(value: &str) -> String {
    value.chars().filter(|c| c.is_ascii_alphanumeric() || ":/._-?=&%".contains(*c)).collect()
}
