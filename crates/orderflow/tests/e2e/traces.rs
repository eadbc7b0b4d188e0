//! OpenTelemetry traces, received over OTLP/gRPC by a collector in the test: one trace follows
//! an order from the caller's request (its `traceparent`) through the API process, the
//! workflow start, and each step on a worker in another process, down to the step's SQL.

use crate::support::{TestApp, readme_order};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use orderflow::config::SimulationConfig;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;

/// The caller's trace and span (W3C Trace Context).
const CALLER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";
const STEPS: [&str; 5] =
    ["create_order", "reserve_stock", "process_payment", "confirm_order", "notify_customer"];

#[tokio::test]
async fn one_trace_follows_an_order_from_the_request_through_each_step_on_another_worker() {
    let collector = Collector::start().await;
    let app = TestApp::spawn_without_worker(SimulationConfig::default()).await;
    let endpoint = format!("http://127.0.0.1:{}", collector.port);
    // Outside the ephemeral range: no outgoing connection can take it before the child binds it.
    let port = orderflow_testbed::free_ports(1).expect("a free port").to_string();
    let otel = |service: &str| {
        vec![
            ("OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(), endpoint.clone()),
            ("OTEL_SERVICE_NAME".to_owned(), service.to_owned()),
            // Export every 100 ms rather than every 5 s: the test waits for the spans.
            ("OTEL_BSP_SCHEDULE_DELAY".to_owned(), "100".to_owned()),
        ]
    };
    let mut api_env = otel("orderflow-api");
    api_env.push(("HTTP_HOST".to_owned(), "127.0.0.1".to_owned()));
    api_env.push(("HTTP_PORT".to_owned(), port.clone()));
    let worker_env = otel("orderflow-worker");
    let worker = app.worker_process(&borrowed(&worker_env));
    let api = app.process("api", &borrowed(&api_env));
    let base = format!("http://127.0.0.1:{port}");
    wait_until_ready(&app.http, &base).await;

    let response = app
        .http
        .post(format!("{base}/api/orders"))
        .header("traceparent", format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01"))
        .json(&readme_order())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let order: serde_json::Value = response.json().await.unwrap();
    let workflow_id = order["workflow_id"].as_str().unwrap().to_owned();
    for _ in 0..200 {
        let url = format!("{base}/api/orders/status?workflow_id={workflow_id}");
        let status: serde_json::Value =
            app.http.get(url).send().await.unwrap().json().await.unwrap();
        if status["status"] == "completed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The order records its trace, for the operators' order page.
    let order_id = order["order_id"].as_str().unwrap();
    let detail: serde_json::Value = app
        .http
        .get(format!("{base}/api/orders/{order_id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(detail["trace_id"], CALLER_TRACE, "{detail}");

    let spans = collector.wait_for(tree_is_complete).await;
    let trace = Trace(spans.iter().filter(|s| s.trace_id == CALLER_TRACE).cloned().collect());
    let http = trace.named("HTTP POST");
    assert_eq!(http.parent, CALLER_SPAN, "the request continues the caller's trace");
    assert_eq!(http.service, "orderflow-api");
    let start = trace.named("StartWorkflow:OrderWorkflow");
    assert!(trace.descends(start, http), "the workflow start is inside the request");
    let run = trace.named("RunWorkflow:OrderWorkflow");
    assert_eq!(run.service, "orderflow-worker", "the workflow runs in the other process");
    assert!(trace.descends(run, start), "the workflow continues the start's trace");
    for step in STEPS {
        let activity = trace.named(&format!("RunActivity:{step}"));
        assert_eq!(activity.service, "orderflow-worker");
        assert!(trace.descends(activity, run), "{step} is not inside the workflow's trace");
        let work = trace.child(activity, "step");
        assert!(work.is_some(), "{step}: no step span under its activity span");
    }
    // The steps' SQL, under the step that ran it.
    for (step, sql) in [("reserve_stock", "reserve_stock"), ("confirm_order", "confirm_order")] {
        let step_span = trace.child(trace.named(&format!("RunActivity:{step}")), "step").unwrap();
        assert!(trace.child(step_span, sql).is_some(), "{step}: no {sql} span under its step");
    }
    drop((api, worker));
}

fn borrowed(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

async fn wait_until_ready(http: &reqwest::Client, base: &str) {
    for _ in 0..300 {
        if let Ok(response) = http.get(format!("{base}/ready")).send().await
            && response.status() == 200
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the API process at {base} never became ready");
}

/// Every span the test looks for has arrived.
fn tree_is_complete(spans: &[Received]) -> bool {
    let names: Vec<&str> =
        spans.iter().filter(|s| s.trace_id == CALLER_TRACE).map(|s| s.name.as_str()).collect();
    let has = |name: &str| names.contains(&name);
    has("HTTP POST")
        && has("StartWorkflow:OrderWorkflow")
        && has("RunWorkflow:OrderWorkflow")
        && STEPS.iter().all(|s| has(&format!("RunActivity:{s}")))
        && names.iter().filter(|n| **n == "step").count() >= STEPS.len()
}

#[derive(Debug, Clone)]
struct Received {
    trace_id: String,
    span_id: String,
    parent: String,
    name: String,
    service: String,
}

struct Trace(Vec<Received>);

impl Trace {
    fn named(&self, name: &str) -> &Received {
        let found = self.0.iter().find(|s| s.name == name);
        found.unwrap_or_else(|| panic!("no span {name} in the trace: {:#?}", self.0))
    }

    fn child(&self, parent: &Received, name: &str) -> Option<&Received> {
        self.0.iter().find(|s| s.name == name && s.parent == parent.span_id)
    }

    /// Whether `span` is `ancestor` or below it.
    fn descends(&self, span: &Received, ancestor: &Received) -> bool {
        let mut current = Some(span);
        for _ in 0..64 {
            match current {
                Some(s) if s.span_id == ancestor.span_id => return true,
                Some(s) => current = self.0.iter().find(|p| p.span_id == s.parent),
                None => return false,
            }
        }
        false
    }
}

/// An OTLP/gRPC collector on a free loopback port that keeps every span it receives.
struct Collector {
    port: u16,
    spans: Arc<Mutex<Vec<Received>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Collector {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let spans = Arc::new(Mutex::new(Vec::new()));
        let service = TraceServiceServer::new(Sink(spans.clone()));
        let task = tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(TcpListenerStream::new(listener))
                .await;
        });
        Self { port, spans, task }
    }

    /// The spans received, once `complete` says they are all there (at most 30 s).
    async fn wait_for(&self, complete: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        for _ in 0..300 {
            let spans = self.spans.lock().unwrap().clone();
            if complete(&spans) {
                return spans;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let spans = self.spans.lock().unwrap().clone();
        let names: Vec<_> = spans.iter().map(|s| (&s.service, &s.name, &s.trace_id)).collect();
        panic!("the trace never became complete; received: {names:#?}");
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Sink(Arc<Mutex<Vec<Received>>>);

#[tonic::async_trait]
impl TraceService for Sink {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut received = self.0.lock().unwrap();
        for resource_spans in request.into_inner().resource_spans {
            let attributes = resource_spans.resource.map(|r| r.attributes).unwrap_or_default();
            let service = attributes
                .iter()
                .find(|a| a.key == "service.name")
                .and_then(|a| a.value.as_ref()?.value.as_ref())
                .map(|v| match v {
                    AnyValue::StringValue(s) => s.clone(),
                    other => format!("{other:?}"),
                })
                .unwrap_or_default();
            for span in resource_spans.scope_spans.into_iter().flat_map(|s| s.spans) {
                received.push(Received {
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent: hex(&span.parent_span_id),
                    name: span.name,
                    service: service.clone(),
                });
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse { partial_success: None }))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
