//! OrderFlow's HTTP API. Handlers parse into domain types, talk to PostgreSQL (the store) and
//! Temporal (the orchestrator), and answer errors as problem+json.

mod error;
mod extract;
mod health;
mod json;
mod orchestrator;
mod orders;
mod products;

pub use error::ApiError;
pub use json::AppJson;
pub use orchestrator::Orchestrator;
pub use orders::{CreateOrderRequest, OrderAccepted, OrderStatusResponse};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{get, post};
use orderflow_store::Store;
use tower_http::trace::TraceLayer;

/// Largest request body accepted (413 beyond): 50 lines fit in a few KiB.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What every handler can reach.
#[derive(Clone)]
pub struct ApiContext {
    pub store: Store,
    pub orchestrator: Orchestrator,
}

pub fn router(ctx: ApiContext) -> Router {
    Router::new()
        .route("/api/orders", post(orders::create_order))
        .route("/api/orders/status", get(orders::order_status))
        .route("/api/orders/cancel", post(orders::cancel_order))
        .route("/api/orders/state", get(orders::order_state))
        .route("/api/products", get(products::list_products))
        .route("/api/products/{id}", get(products::get_product))
        .route("/health", get(health::health))
        .fallback(|| async { ApiError::NotFound("There is nothing at this path.".into()) })
        .method_not_allowed_fallback(|| async {
            ApiError::Rejected {
                status: StatusCode::METHOD_NOT_ALLOWED,
                detail: "This path does not accept that method.".into(),
            }
        })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(TraceLayer::new_for_http())
        .with_state(ctx)
}
