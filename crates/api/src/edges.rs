//! What every response and request goes through at the edge: security headers, problem+json
//! for every error, no caching of the API's answers, and a caller's `X-Request-Id` kept only
//! when it is fit to be logged and sent back.

use crate::{ApiError, MAX_BODY_BYTES};
use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower_http::set_header::SetResponseHeaderLayer;

/// The page's sources: scripts and styles of this origin only (the dashboard and Swagger UI
/// have no inline scripts; Swagger UI sets inline styles), no framing by other sites (no
/// clickjacking of the cancel buttons), forms and `<base>` locked down.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
    frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'";

/// Security headers of every response (a handler's own value wins; see [`with_security_headers`]).
const SECURITY_HEADERS: [(HeaderName, &str); 4] = [
    (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::X_FRAME_OPTIONS, "DENY"),
    (header::REFERRER_POLICY, "no-referrer"),
];

/// The outermost layers of every answer: error answers made outside the handlers given the
/// problem+json shape, the API's answers kept out of caches, and the security headers.
pub fn finish<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    let router = router
        .layer(axum::middleware::from_fn(problem_for_bare_errors))
        .layer(axum::middleware::from_fn(no_store_for_the_api));
    SECURITY_HEADERS.into_iter().fold(router, |router, (name, value)| {
        router.layer(SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value)))
    })
}

/// Every error answer is problem+json. Handlers' errors are (`ApiError`); those made by layers
/// and extractors around them come bare (a body over the limit, the request timeout, a
/// malformed request line) and are given the same shape here, keeping their status and
/// headers (`Retry-After`, `Allow`, ...).
async fn problem_for_bare_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    // Bare: no body type, or plain text (a handler's own JSON, such as /health's report of
    // which dependency is down, is left as it is).
    let bare = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_none_or(|v| v.as_bytes().starts_with(b"text/plain"));
    if !(status.is_client_error() || status.is_server_error()) || !bare {
        return response;
    }
    let error = match status {
        StatusCode::SERVICE_UNAVAILABLE => {
            ApiError::Unavailable("The request took too long to answer; retry.".into())
        }
        StatusCode::PAYLOAD_TOO_LARGE => too_large(),
        _ => ApiError::Rejected {
            status,
            detail: format!("{}.", status.canonical_reason().unwrap_or("The request failed")),
        },
    };
    let (mut parts, _) = response.into_parts();
    let problem = error.into_response();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.extend(problem.headers().clone());
    Response::from_parts(parts, problem.into_body())
}

/// The API's answers carry customers' orders and tokens' views: no cache (a browser's, a
/// proxy's) may keep them. Pages and scripts keep their own caching.
async fn no_store_for_the_api(request: Request, next: Next) -> Response {
    let api = request.uri().path().starts_with("/api/");
    let mut response = next.run(request).await;
    if api && !response.headers().contains_key(header::CACHE_CONTROL) {
        response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// The longest caller-supplied request id kept.
const MAX_REQUEST_ID: usize = 128;

/// Drops a caller's `X-Request-Id` that is too long or not plain printable ASCII, so that a
/// fresh one is made instead: it is logged with every line and sent back.
pub async fn drop_unusable_request_id(mut request: Request, next: Next) -> Response {
    let usable = |value: &HeaderValue| {
        let bytes = value.as_bytes();
        !bytes.is_empty()
            && bytes.len() <= MAX_REQUEST_ID
            && bytes.iter().all(|b| b.is_ascii_graphic())
    };
    if request.headers().get("x-request-id").is_some_and(|v| !usable(v)) {
        request.headers_mut().remove("x-request-id");
    }
    next.run(request).await
}

/// A request's body is read whole before anything answers it. An answer given before its body
/// was read (a 415, a 401, a 404) makes hyper close the keep-alive connection the client is
/// still writing to, so that the client's next request on it fails with a broken pipe. A body
/// over [`crate::MAX_BODY_BYTES`] is not read to its end: 413, and the connection is closed
/// (`Connection: close` says so).
pub async fn read_body_first(request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    // A declared length over the limit is refused before anything is read.
    let declared = parts.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok());
    if declared.and_then(|v| v.parse::<u64>().ok()).is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return closing(too_large());
    }
    match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(bytes) => next.run(Request::from_parts(parts, Body::from(bytes))).await,
        Err(e) => {
            let over_the_limit =
                std::iter::successors(Some(&e as &(dyn std::error::Error + 'static)), |e| {
                    e.source()
                })
                .any(|e| e.is::<http_body_util::LengthLimitError>());
            closing(if over_the_limit {
                too_large()
            } else {
                ApiError::Rejected {
                    status: StatusCode::BAD_REQUEST,
                    detail: "The request body could not be read to its end.".into(),
                }
            })
        }
    }
}

fn too_large() -> ApiError {
    ApiError::Rejected {
        status: StatusCode::PAYLOAD_TOO_LARGE,
        detail: format!("The request body is larger than {MAX_BODY_BYTES} bytes."),
    }
}

/// `error`'s answer, on a connection that is closed after it (the body was not read whole).
fn closing(error: ApiError) -> Response {
    let mut response = error.into_response();
    response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}
