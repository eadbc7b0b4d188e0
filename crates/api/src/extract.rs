use crate::ApiError;
use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use orderflow_domain::WorkflowId;
use std::collections::HashMap;

/// The `?workflow_id=` of the order endpoints. Missing or empty is a 400; a value that cannot
/// be the workflow id of any order is a 404, like an unknown one.
pub struct OrderRef(pub WorkflowId);

impl<S: Send + Sync> FromRequestParts<S> for OrderRef {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Query(params) = Query::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::BadRequest(e.body_text()))?;
        let text = params.get("workflow_id").map(|s| s.trim()).unwrap_or_default();
        if text.is_empty() {
            return Err(ApiError::BadRequest(
                "The query parameter workflow_id is required, e.g. ?workflow_id=order-….".into(),
            ));
        }
        WorkflowId::parse(text)
            .map(OrderRef)
            .ok_or_else(|| ApiError::NotFound(format!("No order has workflow_id {text}.")))
    }
}
