//! Logs, and OpenTelemetry traces when an OTLP endpoint is configured.
//!
//! Traces follow an order end to end: the HTTP request (continuing the caller's `traceparent`),
//! the workflow start, the workflow and each step on whichever worker runs it (the context
//! travels in Temporal's headers: the SDK's OpenTelemetry plugin), and inside a step its SQL
//! and provider calls (the service's `tracing` spans, bridged by `tracing-opentelemetry`).

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{SpanExporter, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{BatchSpanProcessor, SdkTracerProvider};
use std::sync::OnceLock;
use temporalio_sdk::opentelemetry::{WorkflowIdGenerator, WorkflowSpanProcessor};
use tracing::Level;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// The crates whose `info` spans belong to an order's trace.
const OUR_CRATES: [&str; 5] =
    ["orderflow", "orderflow_api", "orderflow_store", "orderflow_providers", "orderflow_workflow"];

/// The process's tracer provider, when traces are exported.
static TRACES: OnceLock<SdkTracerProvider> = OnceLock::new();

/// Whether this process exports traces (the Temporal client then carries the trace context).
pub fn traces_enabled() -> bool {
    TRACES.get().is_some()
}

/// Logs to stdout: human-readable by default, one JSON object per line with `LOG_FORMAT=json`.
/// The level comes from `RUST_LOG` (default `info`, with the Temporal core's chatter at `warn`).
/// With `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) set, spans are
/// also exported over OTLP; see [`tracer_provider`].
pub fn init_tracing() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(
            "info,temporalio_sdk_core=warn,temporalio_client=warn,sqlx::postgres::notice=warn",
        )
    });
    let json = std::env::var("LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let logs = if json {
        tracing_subscriber::fmt::layer().with_target(false).json().boxed()
    } else {
        tracing_subscriber::fmt::layer().with_target(false).boxed()
    };
    let provider = tracer_provider();
    // The spans of a trace do not depend on RUST_LOG (which may quieten the logs to `warn`):
    // OrderFlow's own spans at `info`, the libraries' only from `warn` (their chatter).
    let traces = match &provider {
        Ok(Some(provider)) => {
            let tracer = provider.tracer("orderflow");
            let ours = Targets::new()
                .with_default(Level::WARN)
                .with_targets(OUR_CRATES.map(|target| (target, Level::INFO)));
            Some(tracing_opentelemetry::layer().with_tracer(tracer).with_filter(ours))
        }
        _ => None,
    };
    let logs = logs.with_filter(filter);
    let _ = tracing_subscriber::registry().with(logs).with(traces).try_init();
    match provider {
        Ok(Some(provider)) => {
            opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
            opentelemetry::global::set_tracer_provider(provider.clone());
            let _ = TRACES.set(provider);
            tracing::info!("exporting traces over OTLP");
        }
        Ok(None) => {}
        // Observability must not take the service down: it runs, and says why it is blind.
        Err(error) => tracing::error!(error = %error, "traces are not exported"),
    }
}

/// Sends the spans still buffered (at shutdown).
pub fn flush_traces() {
    if let Some(provider) = TRACES.get()
        && let Err(error) = provider.force_flush()
    {
        tracing::warn!(error = %error, "could not flush the last spans");
    }
}

/// The OTLP exporter, configured by the standard variables, which `opentelemetry-otlp` reads:
/// `OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT`, `_HEADERS`, `_TIMEOUT`, `_COMPRESSION`; the resource
/// from `OTEL_SERVICE_NAME` (default `orderflow`) and `OTEL_RESOURCE_ATTRIBUTES`; sampling from
/// `OTEL_TRACES_SAMPLER[_ARG]`. Off when no endpoint is set, or with `OTEL_SDK_DISABLED=true` or
/// `OTEL_TRACES_EXPORTER=none`. The protocol is OTLP/gRPC (`OTEL_EXPORTER_OTLP_PROTOCOL=grpc`,
/// the default here): the Temporal SDK already links its gRPC stack; `http/protobuf` is refused
/// (docs/operations.md, "Traces").
fn tracer_provider() -> anyhow::Result<Option<SdkTracerProvider>> {
    let set = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let disabled = set("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"))
        || set("OTEL_TRACES_EXPORTER").is_some_and(|v| v.eq_ignore_ascii_case("none"));
    let endpoint = set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").or(set("OTEL_EXPORTER_OTLP_ENDPOINT"));
    if disabled || endpoint.is_none() {
        return Ok(None);
    }
    let protocol = set("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        .or(set("OTEL_EXPORTER_OTLP_PROTOCOL"))
        .unwrap_or_else(|| "grpc".to_owned());
    anyhow::ensure!(
        protocol == "grpc",
        "OTEL_EXPORTER_OTLP_PROTOCOL={protocol} is not supported: use grpc (a collector's port 4317)"
    );
    let exporter = SpanExporter::builder()
        .with_tonic()
        .with_protocol(opentelemetry_otlp::Protocol::Grpc)
        .build()?;
    let mut resource = Resource::builder();
    if set("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name("orderflow");
    }
    // Workflow spans get ids from the workflow's deterministic randomness, so that a replay
    // produces the same ids; the processor drops the spans a replay re-creates.
    let processor = WorkflowSpanProcessor::new(BatchSpanProcessor::builder(exporter).build());
    Ok(Some(
        SdkTracerProvider::builder()
            .with_resource(resource.build())
            .with_id_generator(WorkflowIdGenerator::default())
            .with_span_processor(processor)
            .build(),
    ))
}
