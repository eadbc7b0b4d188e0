use crate::ApiContext;
use crate::orchestrator::NotPolled;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use std::time::Duration;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok` when every dependency answers, else `degraded`.
    pub status: &'static str,
    pub postgres: Dependency,
    pub temporal: Dependency,
    /// Only in `/ready`: whether a worker polls the order task queue.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workers: Option<Dependency>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Dependency {
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Dependency {
    /// The raw error goes to the log only: health endpoints are public, and a driver's error
    /// text can name hosts, users and schema.
    fn from(name: &str, down: &str, result: Result<(), String>) -> Self {
        match result {
            Ok(()) => Self { status: "up", error: None },
            Err(error) => {
                tracing::warn!(dependency = name, %error, "health check failed");
                Self {
                    status: "down",
                    error: Some(format!("{down}; details in the service's log")),
                }
            }
        }
    }
}

/// Liveness: the process runs and serves HTTP. Asks nothing of PostgreSQL or Temporal, so
/// that a liveness probe built on it never restarts a healthy process because a dependency
/// blipped (that is what `/ready` is for: take it out of the load balancer instead).
#[utoipa::path(
    get,
    path = "/live",
    tag = "operations",
    responses((status = 200, description = "The process is alive", body = Live))
)]
pub async fn live() -> Json<Live> {
    Json(Live { status: "alive" })
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Live {
    /// Always `alive`.
    #[schema(example = "alive")]
    pub status: &'static str,
}

/// Dependencies (the Go service's health check): 200 when PostgreSQL and Temporal both answer, 503
/// otherwise; the body says which is down. Not a liveness probe: see `/live`.
#[utoipa::path(
    get,
    path = "/health",
    tag = "operations",
    responses(
        (status = 200, description = "Both dependencies answer", body = Health),
        (status = 503, description = "A dependency is down", body = Health),
    )
)]
pub async fn health(State(ctx): State<ApiContext>) -> (StatusCode, Json<Health>) {
    let (postgres, temporal) = tokio::join!(postgres(&ctx), ctx.orchestrator.ping());
    answer(postgres, temporal, None)
}

/// Readiness: like `/health`, and a worker must be polling the order task queue, so that an
/// accepted order will be processed. For load balancers and orchestrators.
#[utoipa::path(
    get,
    path = "/ready",
    tag = "operations",
    responses(
        (status = 200, description = "Ready to take orders", body = Health),
        (status = 503, description = "Not ready; the body says why", body = Health),
    )
)]
pub async fn ready(State(ctx): State<ApiContext>) -> (StatusCode, Json<Health>) {
    let (postgres, temporal, workers) =
        tokio::join!(postgres(&ctx), ctx.orchestrator.ping(), ctx.orchestrator.workers_polling());
    answer(postgres, temporal, Some(workers))
}

async fn postgres(ctx: &ApiContext) -> Result<(), String> {
    match tokio::time::timeout(Duration::from_secs(2), ctx.store.ping()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("no answer within 2 s".to_owned()),
    }
}

fn answer(
    postgres: Result<(), String>,
    temporal: Result<(), String>,
    workers: Option<Result<(), NotPolled>>,
) -> (StatusCode, Json<Health>) {
    let healthy =
        postgres.is_ok() && temporal.is_ok() && workers.as_ref().is_none_or(Result::is_ok);
    let body = Health {
        status: if healthy { "ok" } else { "degraded" },
        postgres: Dependency::from("postgres", "PostgreSQL is not answering", postgres),
        temporal: Dependency::from("temporal", "Temporal is not answering", temporal),
        workers: workers.map(|w| match w {
            Ok(()) => Dependency::from("workers", "", Ok(())),
            Err(not_polled) => {
                Dependency::from("workers", not_polled.reason, Err(not_polled.detail))
            }
        }),
    };
    (if healthy { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }, Json(body))
}
