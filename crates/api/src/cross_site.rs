//! State-changing requests refuse what a browser sends on behalf of another site (cross-site
//! request forgery): a form posted from a page elsewhere, or any request that another origin's
//! page made the browser send. In `AUTH_MODE=off` nothing else would stop a web page from
//! cancelling orders through its visitors' browsers.
//!
//! A refused request: `Sec-Fetch-Site: cross-site`, an `Origin` that is not this service's own
//! host (`Host`, or `X-Forwarded-Host` behind a proxy), or a body type an HTML form can send
//! (`application/x-www-form-urlencoded`, `multipart/form-data`, `text/plain`): such requests
//! get 403 or 415 and change nothing. Clients that are not browsers (curl, servers) send none of
//! these and are not affected. There is no CORS: other origins cannot call the API from a page.

use crate::ApiError;
use axum::extract::Request;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

pub async fn refuse_cross_site(request: Request, next: Next) -> Response {
    if is_state_changing(request.method())
        && let Err(refusal) = check(request.headers())
    {
        return refusal.into_response();
    }
    next.run(request).await
}

fn is_state_changing(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

fn check(headers: &HeaderMap) -> Result<(), ApiError> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let forbidden =
        || ApiError::Forbidden("Cross-site requests may not change anything here.".into());
    if text("sec-fetch-site") == Some("cross-site") {
        return Err(forbidden());
    }
    if let Some(origin) = text(header::ORIGIN.as_str()) {
        let origin_host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
        let own = [text(header::HOST.as_str()), text("x-forwarded-host")];
        if !own.into_iter().flatten().any(|host| host.eq_ignore_ascii_case(origin_host)) {
            return Err(forbidden());
        }
    }
    let content_type = text(header::CONTENT_TYPE.as_str()).unwrap_or_default();
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    let form_types = ["application/x-www-form-urlencoded", "multipart/form-data", "text/plain"];
    if form_types.iter().any(|form| essence.eq_ignore_ascii_case(form)) {
        return Err(ApiError::Rejected {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            detail: "Send JSON (Content-Type: application/json), or no body.".into(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn curl_and_same_origin_pages_pass() {
        assert!(check(&headers(&[("host", "localhost:8080")])).is_ok());
        let page = [("host", "localhost:8080"), ("origin", "http://localhost:8080")];
        assert!(check(&headers(&page)).is_ok());
        let json = [("host", "x"), ("content-type", "application/json")];
        assert!(check(&headers(&json)).is_ok());
    }

    #[test]
    fn another_sites_form_or_script_is_refused() {
        let evil = [("host", "localhost:8080"), ("origin", "https://evil.example")];
        assert!(check(&headers(&evil)).is_err());
        assert!(check(&headers(&[("sec-fetch-site", "cross-site")])).is_err());
        let form = [("content-type", "application/x-www-form-urlencoded")];
        assert!(check(&headers(&form)).is_err());
        assert!(check(&headers(&[("content-type", "text/plain;charset=UTF-8")])).is_err());
    }
}
