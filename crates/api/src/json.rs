//! `Json` that rejects with the same problem+json errors as everything else: 400 for broken
//! JSON, 415 without a JSON content type, 413 over the size limit, 422 for a wrong shape
//! (axum's message names the offending field, e.g. `items[0].quantity: invalid type`).

use crate::ApiError;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;

pub struct AppJson<T>(pub T);

impl<S, T> FromRequest<S> for AppJson<T>
where
    axum::Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(JsonRejection::JsonDataError(e)) => Err(ApiError::Unprocessable {
                code: "invalid_body",
                detail: e.body_text(),
                field: None,
            }),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::Rejected {
                status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
                detail: "Send the body as JSON with `Content-Type: application/json`.".into(),
            }),
            Err(other) => {
                Err(ApiError::Rejected { status: other.status(), detail: other.body_text() })
            }
        }
    }
}
