//! What every response and request goes through at the edge: security headers, and a caller's
//! `X-Request-Id` kept only when it is fit to be logged and sent back.

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
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

pub fn with_security_headers<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    SECURITY_HEADERS.into_iter().fold(router, |router, (name, value)| {
        router.layer(SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value)))
    })
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
