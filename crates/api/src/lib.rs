//! OrderFlow's HTTP API. Handlers parse into domain types, talk to PostgreSQL (the store) and
//! Temporal (the orchestrator), and answer errors as problem+json. Every route is registered
//! together with its OpenAPI description (`utoipa-axum`), so the served document at
//! `/api/openapi.json` cannot drift from the routes.

mod admin;
pub mod admission;
pub mod auth;
mod cross_site;
mod dashboard;
mod edges;
mod error;
mod extract;
mod health;
mod json;
mod log_throttle;
pub mod metrics;
mod operator;
mod orchestrator;
mod order_views;
mod orders;
mod products;
pub mod rate_limit;
mod responses;
mod webhooks;

pub use admin::AdminKey;
pub use admission::{Admission, Limit};
pub use auth::{Authenticator, JwtVerifier, Principal};
pub use error::{ApiError, Problem};
pub use health::live;
pub use json::AppJson;
pub use orchestrator::{DEFAULT_WORKFLOW_TASK_TIMEOUT, Orchestrator};
pub use order_views::{OrderDetail, OrderPage, OrderSummary};
pub use orders::{CreateOrderRequest, OrderAccepted, OrderStatusResponse};
pub use rate_limit::WriteLimits;
pub use webhooks::PaymentWebhooks;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request, StatusCode};
use axum::response::Redirect;
use axum::routing::get;
use opentelemetry_http::HeaderExtractor;
use orderflow_store::Store;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use utoipa::OpenApi;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::SwaggerUi;

/// Largest request body accepted (413 beyond): 50 lines fit in a few KiB.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Orders in flight per API process unless configured (`MAX_ORDERS_IN_FLIGHT`).
pub const DEFAULT_MAX_ORDERS_IN_FLIGHT: usize = 200;

/// How long an Idempotency-Key holds unless configured.
pub const DEFAULT_IDEMPOTENCY_TTL: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// The longest an order counts as in flight (`ORDER_ADMISSION_LEASE_MS`).
pub const DEFAULT_ADMISSION_LEASE: std::time::Duration = std::time::Duration::from_secs(30);

/// How long an admitted order may take before admission holds back: 40% of the workflow task
/// timeout. An order runs its steps in its first workflow task, which the worker must heartbeat
/// at 80% of the timeout; orders kept well inside that never need the heartbeat, let alone
/// time out when a heartbeat is late (docs/operations.md, "Overload").
pub fn latency_target(workflow_task_timeout: std::time::Duration) -> std::time::Duration {
    workflow_task_timeout.mul_f64(0.4)
}

/// What every handler can reach.
#[derive(Clone)]
pub struct ApiContext {
    /// The API's own pool: a burst of steps on the worker cannot starve reads of connections.
    pub store: Store,
    pub orchestrator: Orchestrator,
    /// How many orders this process lets run at once.
    pub admission: Admission,
    /// `ADMIN_API_KEY`; without it the admin endpoints are disabled.
    pub admin_key: Option<AdminKey>,
    /// `AUTH_MODE`: who the caller is.
    pub auth: Authenticator,
    /// Writes per principal.
    pub write_limits: WriteLimits,
    /// Webhook requests per sender address: a flood of forged webhooks is cut off before its
    /// signatures are checked.
    pub webhook_limits: WriteLimits,
    /// How long an Idempotency-Key holds (`IDEMPOTENCY_KEY_TTL_HOURS`).
    pub idempotency_ttl: std::time::Duration,
    /// Where the Temporal Web UI is, for the dashboard's links.
    pub temporal_ui_url: String,
    /// `PAYMENT_WEBHOOK_SECRET` and the provider; without them the webhook endpoint is 503.
    pub webhooks: Option<PaymentWebhooks>,
    /// The simulated provider the dashboard may confirm payments at
    /// (`DASHBOARD_PAYMENT_SIMULATOR`); `None`: no such buttons.
    pub payment_simulator_url: Option<String>,
}

impl ApiContext {
    pub fn new(store: Store, orchestrator: Orchestrator) -> Self {
        Self {
            admission: Admission::new(
                store.clone(),
                Limit::new(
                    DEFAULT_MAX_ORDERS_IN_FLIGHT,
                    latency_target(DEFAULT_WORKFLOW_TASK_TIMEOUT),
                ),
                DEFAULT_ADMISSION_LEASE,
            ),
            store,
            orchestrator,
            admin_key: None,
            auth: Authenticator::Off,
            write_limits: WriteLimits::off(),
            webhook_limits: WriteLimits::off(),
            idempotency_ttl: DEFAULT_IDEMPOTENCY_TTL,
            temporal_ui_url: "http://localhost:8233".into(),
            webhooks: None,
            payment_simulator_url: None,
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "OrderFlow",
        description = "Durable order processing on Temporal and PostgreSQL. Errors are RFC 9457 \
                       application/problem+json. Money is a decimal string (\"999.99\").",
        license(name = "MIT")
    ),
    tags(
        (name = "orders", description = "Place, follow and cancel orders"),
        (name = "products", description = "The catalog and its stock"),
        (name = "payments", description = "The payment provider's signed webhooks"),
        (name = "admin", description = "Operators only: an operator's bearer token (roles contains \
                                          \"operator\") or the X-API-Key service credential"),
        (name = "operations", description = "Health, readiness, metrics, dashboard"),
    ),
    components(responses(
        responses::Unauthenticated,
        responses::NotYours,
        responses::RateLimited,
        responses::WorkflowIdMissing,
        responses::OrderNotFound,
        responses::ProductNotFound,
        responses::NoWorker,
        responses::DatabaseUnavailable,
        responses::AdminUnauthorized,
        responses::AdminForbidden,
        responses::NotJson,
        responses::TooLarge,
        responses::NotSentAsJson,
        responses::Unavailable,
        responses::BadQuery,
    )),
    modifiers(&SecuritySchemes)
)]
struct ApiDoc;

struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "AUTH_MODE=jwt: a token whose sub is the customer; roles containing \
                         \"operator\" make an operator. AUTH_MODE=off (development): not needed.",
                    ))
                    .build(),
            ),
        );
    }
}

/// Every route with its description. `/api/openapi.json` serves the description.
pub fn routes() -> (Router<ApiContext>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(orders::create_order, order_views::list_orders))
        .routes(routes!(orders::order_status))
        .routes(routes!(orders::cancel_order))
        .routes(routes!(orders::order_state))
        .routes(routes!(order_views::order_detail))
        .routes(routes!(products::list_products))
        .routes(routes!(products::get_product))
        .routes(routes!(products::restock_product))
        .routes(routes!(operator::stuck_orders))
        .routes(routes!(webhooks::payment_webhook))
        .routes(routes!(health::live))
        .routes(routes!(health::health))
        .routes(routes!(health::ready))
        .routes(routes!(metrics::api_metrics))
        .routes(routes!(dashboard::page))
        .split_for_parts()
}

pub fn router(ctx: ApiContext) -> Router {
    metrics::recorder();
    let (routes, openapi) = routes();
    let request_id = HeaderName::from_static("x-request-id");
    let routes = routes
        .route("/", get(|| async { Redirect::temporary("/dashboard") }))
        .route("/dashboard/{module}", get(dashboard::module))
        .merge(SwaggerUi::new("/docs").url("/api/openapi.json", openapi))
        .fallback(|| async { ApiError::NotFound("There is nothing at this path.".into()) })
        .method_not_allowed_fallback(|| async {
            ApiError::Rejected {
                status: StatusCode::METHOD_NOT_ALLOWED,
                detail: "This path does not accept that method.".into(),
            }
        })
        .layer(axum::middleware::from_fn(cross_site::refuse_cross_site))
        .layer(axum::middleware::from_fn(metrics::track_http))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(edges::read_body_first))
        // Every request gets an id (or keeps the caller's), logged with it and sent back.
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        // Errors are logged once, where they are turned into responses (`ApiError`); the trace
        // layer only gives every line of a request its span.
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request<_>| {
                    let id = request.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("");
                    let uri = extract::shown(&request.uri().to_string());
                    let span = tracing::info_span!("http", method = %request.method(), uri = %uri, request_id = %id, otel.name = %format!("HTTP {}", request.method()), otel.kind = "server");
                    // Continues the caller's trace (W3C `traceparent`), when traces are exported.
                    let caller = opentelemetry::global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(request.headers())));
                    let _ = span.set_parent(caller);
                    span
                })
                .on_failure(()),
        )
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .layer(axum::middleware::from_fn(edges::drop_unusable_request_id));
    edges::finish(routes).with_state(ctx)
}

/// [`router`] with a deadline on every request: beyond `timeout`, 503 problem+json. Applied
/// around the router's own layers, so that the timeout's answer goes through the same edge
/// (problem+json, security headers) as every other.
pub fn router_with_timeout(ctx: ApiContext, timeout: std::time::Duration) -> Router {
    let timed = router(ctx).layer(tower_http::timeout::TimeoutLayer::with_status_code(
        StatusCode::SERVICE_UNAVAILABLE,
        timeout,
    ));
    edges::finish(timed)
}
