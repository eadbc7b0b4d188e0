use crate::ApiContext;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use std::time::Duration;

#[derive(Debug, Serialize)]
pub struct Health {
    /// `ok` when every dependency answers, else `degraded`.
    pub status: &'static str,
    pub postgres: Dependency,
    pub temporal: Dependency,
}

#[derive(Debug, Serialize)]
pub struct Dependency {
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Dependency {
    fn from(result: Result<(), String>) -> Self {
        match result {
            Ok(()) => Self { status: "up", error: None },
            Err(error) => Self { status: "down", error: Some(error) },
        }
    }
}

/// 200 when PostgreSQL and Temporal both answer, 503 otherwise; the body says which is down.
pub async fn health(State(ctx): State<ApiContext>) -> (StatusCode, Json<Health>) {
    let postgres = async {
        match tokio::time::timeout(Duration::from_secs(2), ctx.store.ping()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("no answer within 2 s".to_owned()),
        }
    };
    let (postgres, temporal) = tokio::join!(postgres, ctx.orchestrator.ping());
    let healthy = postgres.is_ok() && temporal.is_ok();
    let body = Health {
        status: if healthy { "ok" } else { "degraded" },
        postgres: Dependency::from(postgres),
        temporal: Dependency::from(temporal),
    };
    (if healthy { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }, Json(body))
}
