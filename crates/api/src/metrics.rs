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
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use temporalio_common::telemetry::metrics::CoreMeter;
use temporalio_common::telemetry::{PrometheusExporterOptions, start_prometheus_metric_exporter};

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

/// The metrics in the Prometheus text format (also the worker's `METRICS_PORT` listener): the
/// service's own, then the Temporal SDK's worker metrics when this process runs a worker.
pub async fn render() -> impl IntoResponse {
    let handle = recorder();
    handle.run_upkeep();
    let mut text = handle.render();
    if let Some(engine) = ENGINE.get() {
        text.push_str(&engine.scrape().await);
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}

/// The Temporal SDK's own metrics (task latencies, slots, sticky cache, polls), `temporal_`
/// prefixed. The SDK records them into its Prometheus registry, which it only exposes through
/// the HTTP server it starts; that server listens on loopback at a port of its choosing and
/// `/metrics` appends what it serves, so one scrape sees the service and its engine together.
static ENGINE: OnceLock<EngineMetrics> = OnceLock::new();

struct EngineMetrics {
    meter: Arc<dyn CoreMeter>,
    address: SocketAddr,
    http: reqwest::Client,
}

/// The meter to give the SDK runtime of every worker of this process (one per process, like the
/// recorder). `None` (and logged) if the SDK's exporter could not start: the worker runs without.
pub fn engine_meter() -> Option<Arc<dyn CoreMeter>> {
    if let Some(engine) = ENGINE.get() {
        return Some(engine.meter.clone());
    }
    // One exporter per process even when two workers start at once.
    static STARTING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _starting = STARTING.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(engine) = ENGINE.get() {
        return Some(engine.meter.clone());
    }
    match start_engine_exporter() {
        Ok(engine) => Some(ENGINE.get_or_init(|| engine).meter.clone()),
        Err(error) => {
            tracing::warn!(error = %error, "the Temporal SDK's metrics are not exported");
            None
        }
    }
}

/// Starts the SDK's exporter on a thread of its own: it must outlive whichever tokio runtime
/// first asked for it (each test has its own).
fn start_engine_exporter() -> anyhow::Result<EngineMetrics> {
    let (started, receive) = std::sync::mpsc::channel();
    std::thread::Builder::new().name("sdk-metrics".into()).spawn(move || {
        let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(runtime) => runtime,
            Err(error) => return drop(started.send(Err(anyhow::Error::from(error)))),
        };
        runtime.block_on(async move {
            let options = PrometheusExporterOptions::builder()
                .socket_addr(SocketAddr::from(([127, 0, 0, 1], 0)))
                // Prometheus conventions: counters end in `_total`, durations in seconds.
                .counters_total_suffix(true)
                .use_seconds_for_durations(true)
                .unit_suffix(true)
                .build();
            let result = start_prometheus_metric_exporter(options);
            let running = result.is_ok();
            let _ = started.send(result.map(|s| (s.meter as Arc<dyn CoreMeter>, s.bound_addr)));
            if running {
                std::future::pending::<()>().await;
            }
        });
    })?;
    let (meter, address) = receive.recv()??;
    let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build()?;
    Ok(EngineMetrics { meter, address, http })
}

impl EngineMetrics {
    /// The SDK's metrics, or nothing (logged) if its exporter does not answer: the service's
    /// own metrics are still worth serving.
    async fn scrape(&self) -> String {
        let url = format!("http://{}/metrics", self.address);
        let body = async { self.http.get(&url).send().await?.error_for_status()?.text().await };
        match body.await {
            Ok(text) => text,
            Err(error) => {
                tracing::warn!(error = %error, "the Temporal SDK's metrics could not be read");
                String::new()
            }
        }
    }
}
