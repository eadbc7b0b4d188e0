//! One error type for every handler, rendered as RFC 9457 `application/problem+json` with a
//! `detail` a person can act on. Internal causes are logged, never sent: no SQL, no stack traces.

use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use orderflow_domain::{InvalidField, OrderRejection};
use orderflow_store::StoreError;
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// A well-formed request the service will not carry out (bad values, unknown product...).
    #[error("{detail}")]
    Unprocessable { code: &'static str, detail: String, field: Option<String> },
    /// A dependency (PostgreSQL, Temporal, a worker) is not available right now; try again.
    #[error("{0}")]
    Unavailable(String),
    /// More work than this process takes on at once: try again after `retry_after` seconds.
    /// Nothing was written or started.
    #[error("{detail}")]
    Overloaded { retry_after: u32, detail: String },
    /// A request for an admin endpoint without the right API key.
    #[error("{0}")]
    Unauthorized(String),
    /// No valid bearer token (`AUTH_MODE=jwt`): 401 with `WWW-Authenticate: Bearer`.
    #[error(transparent)]
    Unauthenticated(#[from] crate::auth::TokenRefused),
    /// Too many writes from this principal (or address): try again after `retry_after` s.
    #[error("{detail}")]
    TooManyRequests { retry_after: u32, detail: String },
    /// The admin endpoints are switched off (no API key configured).
    #[error("{0}")]
    Forbidden(String),
    /// Any status decided by a body extractor (413, 415, ...).
    #[error("{detail}")]
    Rejected { status: StatusCode, detail: String },
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// An error, as RFC 9457 `application/problem+json`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// Always `about:blank`: the status and `code` say what happened.
    #[serde(rename = "type")]
    #[schema(example = "about:blank")]
    pub kind: String,
    #[schema(example = "Unprocessable Entity")]
    pub title: String,
    #[schema(example = 422)]
    pub status: u16,
    /// What went wrong and what to change, for a person.
    #[schema(
        example = "items[0].price: 0.01 is not the price of prod-001; the catalog price is 999.99"
    )]
    pub detail: String,
    /// Machine-readable reason, stable across releases (`invalid_field`, `price_mismatch`,
    /// `unknown_product`, `idempotency_key_reused`, `not_found`, `conflict`, `unavailable`,
    /// `overloaded`, ...).
    #[schema(example = "price_mismatch")]
    pub code: String,
    /// The offending field, when one is at fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "items[0].price")]
    pub field: Option<String>,
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unavailable(_) | Self::Overloaded { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Unauthorized(_) | Self::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::Rejected { status, .. } => *status,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "bad_request",
            Self::NotFound(_) => "not_found",
            Self::Conflict(_) => "conflict",
            Self::Unprocessable { code, .. } => code,
            Self::Unavailable(_) => "unavailable",
            Self::Overloaded { .. } => "overloaded",
            Self::Unauthorized(_) | Self::Unauthenticated(_) => "unauthorized",
            Self::TooManyRequests { .. } => "rate_limited",
            Self::Forbidden(_) => "forbidden",
            Self::Rejected { status, .. } => match *status {
                StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
                StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
                StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
                _ => "invalid_request",
            },
            Self::Internal(_) => "internal_error",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let detail = match &self {
            Self::Internal(cause) => {
                tracing::error!(error = ?cause, "request failed");
                "An unexpected error occurred; it has been logged.".to_owned()
            }
            Self::Unavailable(detail) => {
                tracing::warn!(%detail, "dependency unavailable");
                detail.clone()
            }
            // Expected under load and counted in `orderflow_orders_shed_total`; a log line per
            // refusal would only add to the load.
            Self::Overloaded { detail, .. } | Self::TooManyRequests { detail, .. } => {
                tracing::debug!(%detail, "request shed");
                detail.clone()
            }
            other => other.to_string(),
        };
        let field = match &self {
            Self::Unprocessable { field, .. } => field.as_deref(),
            _ => None,
        };
        let problem = Problem {
            kind: "about:blank".into(),
            title: status.canonical_reason().unwrap_or("Error").into(),
            status: status.as_u16(),
            detail,
            code: self.code().into(),
            field: field.map(str::to_owned),
        };
        let mut response = (status, Json(problem)).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/problem+json"),
        );
        match &self {
            Self::Overloaded { retry_after, .. } | Self::TooManyRequests { retry_after, .. } => {
                headers.insert(header::RETRY_AFTER, header::HeaderValue::from(*retry_after));
            }
            Self::Unauthenticated(refused) => {
                // RFC 6750: say that a bearer token is wanted, and whether the one sent was bad.
                let challenge = match refused {
                    crate::auth::TokenRefused::Missing => "Bearer",
                    crate::auth::TokenRefused::Invalid(_) => "Bearer error=\"invalid_token\"",
                };
                headers
                    .insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static(challenge));
            }
            _ => {}
        }
        response
    }
}

impl From<InvalidField> for ApiError {
    fn from(e: InvalidField) -> Self {
        Self::Unprocessable { code: "invalid_field", detail: e.to_string(), field: Some(e.field) }
    }
}

impl From<OrderRejection> for ApiError {
    fn from(e: OrderRejection) -> Self {
        let (code, field) = match &e {
            OrderRejection::UnknownProduct { index, .. } => {
                ("unknown_product", format!("items[{index}].product_id"))
            }
            OrderRejection::PriceMismatch { index, .. } => {
                ("price_mismatch", format!("items[{index}].price"))
            }
            OrderRejection::TotalTooLarge => ("total_too_large", "items".to_owned()),
        };
        Self::Unprocessable { code, detail: e.to_string(), field: Some(field) }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        if e.is_unavailable() {
            Self::Unavailable("The database is not reachable right now; try again shortly.".into())
        } else {
            Self::Internal(e.into())
        }
    }
}

/// Says what a handler was doing when the store failed, so that the one log line of a 500
/// reads "listing orders: error returned from database: ..." instead of a bare driver error.
pub trait Context<T> {
    fn context(self, doing: &'static str) -> Result<T, ApiError>;
}

impl<T> Context<T> for Result<T, StoreError> {
    fn context(self, doing: &'static str) -> Result<T, ApiError> {
        self.map_err(|e| match ApiError::from(e) {
            ApiError::Internal(cause) => ApiError::Internal(cause.context(doing)),
            unavailable => unavailable,
        })
    }
}
