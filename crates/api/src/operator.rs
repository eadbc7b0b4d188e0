//! The operators' view of orders that need attention: steps that keep failing. The raw errors
//! are shown here (and in the logs), never to customers.

use crate::admin::Admin;
use crate::error::Context;
use crate::responses::{AdminForbidden, AdminUnauthorized, DatabaseUnavailable};
use crate::{ApiContext, ApiError};
use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use orderflow_domain::OrderStatus;
use serde::Serialize;

/// A step that has failed many times in a row and is still being retried.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StuckStep {
    pub order_id: String,
    pub workflow_id: String,
    /// The order's status, if its row exists (the stuck step may be the one that writes it).
    pub status: Option<OrderStatus>,
    pub step: String,
    /// Attempts so far.
    pub attempts: i32,
    /// The last error, as the step saw it.
    pub last_error: String,
    pub stuck_since: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Steps that keep failing (`STUCK_AFTER_ATTEMPTS` times in a row or more), longest stuck
/// first (operators). Each resumes on its own once the cause is fixed, and then leaves this
/// list. Needs an operator's bearer token or the `X-API-Key` service credential.
#[utoipa::path(
    get,
    path = "/api/admin/stuck-orders",
    tag = "admin",
    security(("api_key" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The stuck steps", body = Vec<StuckStep>),
        (status = 401, response = AdminUnauthorized),
        (status = 403, response = AdminForbidden),
        (status = 503, response = DatabaseUnavailable),
    )
)]
pub async fn stuck_orders(
    State(ctx): State<ApiContext>,
    _admin: Admin,
) -> Result<Json<Vec<StuckStep>>, ApiError> {
    let rows = ctx
        .store
        .stuck_steps(orderflow_workflow::STUCK_UNTIL_QUIET_FOR)
        .await
        .context("listing stuck steps")?;
    Ok(Json(
        rows.into_iter()
            .map(|row| StuckStep {
                order_id: row.order_id.to_string(),
                workflow_id: row.workflow_id,
                status: row.status,
                step: row.step,
                attempts: row.attempts,
                last_error: row.last_error,
                stuck_since: row.stuck_since,
                updated_at: row.updated_at,
            })
            .collect(),
    ))
}
