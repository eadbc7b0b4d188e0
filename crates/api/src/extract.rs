use crate::ApiError;
use axum::extract::{FromRequestParts, Path, Query};
use axum::http::request::Parts;
use orderflow_domain::{ProductId, WorkflowId};
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
        let text = params.get("workflow_id").map(String::as_str).unwrap_or_default();
        if text.is_empty() {
            return Err(ApiError::BadRequest(
                "The query parameter workflow_id is required, e.g. ?workflow_id=order-….".into(),
            ));
        }
        WorkflowId::parse(text)
            .map(OrderRef)
            .ok_or_else(|| ApiError::NotFound(format!("No order has workflow_id {}.", shown(text))))
    }
}

/// The `{id}` of the product endpoints. A value that cannot be a product id (a NUL byte,
/// 10 KB of text) is a 404 like an unknown one, decided before any query.
pub struct PathId(pub ProductId);

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(text) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::BadRequest(e.body_text()))?;
        ProductId::parse(text.as_str())
            .map(PathId)
            .map_err(|_| ApiError::NotFound(format!("No product has id {}.", shown(&text))))
    }
}

/// How client input is echoed in messages: at most [`SHOWN_CHARS`] characters, control
/// characters escaped, so that an answer or a log line never carries 60 KB of a caller's text.
pub fn shown(text: &str) -> String {
    let mut shown: String = text.chars().take(SHOWN_CHARS).flat_map(char::escape_debug).collect();
    if text.chars().nth(SHOWN_CHARS).is_some() {
        shown.push('…');
    }
    shown
}

const SHOWN_CHARS: usize = 80;

#[cfg(test)]
mod tests {
    use super::shown;

    #[test]
    fn echoed_input_is_short_and_printable() {
        assert_eq!(shown("prod-001"), "prod-001");
        assert_eq!(shown("a\0b\nc"), "a\\0b\\nc");
        let long = "x".repeat(10_000);
        assert_eq!(shown(&long).chars().count(), 81);
    }
}
