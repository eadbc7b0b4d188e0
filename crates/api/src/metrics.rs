//! `/metrics` in the Prometheus text format. One recorder per process (the `metrics` facade),
//! so the worker's order and step metrics and the API's HTTP metrics appear together when
//! both run in one process (`orderflow serve`).

use crate::auth::Principal;
use crate::{ApiError, Problem};
use axum::extract::{MatchedPath, Request};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Latency buckets (seconds), from a fast status read to a slow order under load.
const BUCKETS: [f64; 14] =
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// The process's recorder, installed on first use.
pub fn recorder() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &BUCKETS)
                .expect("buckets are valid")
                .build_recorder();
            let handle = recorder.handle();
            // Fails only if another recorder was installed first, which then keeps recording.
            let _ = metrics::set_global_recorder(recorder);
            // Histograms are folded into their buckets on upkeep; keep memory flat between scrapes.
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                let handle = handle.clone();
                runtime.spawn(async move {
                    loop {
                        tokio::time::sleep(Duration::from_secs(5)).await;
                        handle.run_upkeep();
                    }
                });
            }
            handle
        })
        .clone()
}

/// Counts requests and records their latency, by route template (not raw path: no cardinality
/// explosion from ids), method and status.
pub async fn track_http(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = method_label(request.method());
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    let labels = [("route", route), ("method", method), ("status", status)];
    metrics::counter!("orderflow_http_requests_total", &labels).increment(1);
    metrics::histogram!("orderflow_http_request_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    response
}

/// The method as a label: one of the standard methods, or `other`. A client chooses the method
/// freely (any token of any length), so the raw method would let it grow `/metrics` without end.
fn method_label(method: &Method) -> String {
    const KNOWN: [Method; 9] = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::HEAD,
        Method::OPTIONS,
        Method::CONNECT,
        Method::TRACE,
    ];
    if KNOWN.contains(method) { method.as_str().to_owned() } else { "other".to_owned() }
}

/// Prometheus metrics. With `AUTH_MODE=jwt`, operators only (Prometheus sends a token with
/// `authorization: {credentials: ...}`), or scrape the separate `METRICS_PORT` listener on an
/// internal network.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "Prometheus text format", body = String, content_type = "text/plain"),
        (status = 401, description = "AUTH_MODE=jwt and no valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A customer's token", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn api_metrics(principal: Principal) -> Result<impl IntoResponse, ApiError> {
    principal.require_operator()?;
    Ok(render().await)
}

/// The metrics in the Prometheus text format (also the worker's `METRICS_PORT` listener).
pub async fn render() -> impl IntoResponse {
    let handle = recorder();
    handle.run_upkeep();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], handle.render())
}
