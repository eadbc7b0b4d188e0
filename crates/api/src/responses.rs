//! The problem+json answers several operations share, described once: an operation lists
//! `(status = 404, response = OrderNotFound)` and the OpenAPI document holds the description
//! and the `Problem` schema under `components/responses`.

use crate::error::Problem;
use utoipa::ToResponse;

/// AUTH_MODE=jwt: no valid bearer token (WWW-Authenticate: Bearer)
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct Unauthenticated(#[allow(dead_code)] Problem);

/// A customer naming another customer, or a cross-site request
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct NotYours(#[allow(dead_code)] Problem);

/// Too many writes by this client; see Retry-After
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct RateLimited(#[allow(dead_code)] Problem);

/// workflow_id missing, or the query is malformed
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct WorkflowIdMissing(#[allow(dead_code)] Problem);

/// No such order
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct OrderNotFound(#[allow(dead_code)] Problem);

/// No such product
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct ProductNotFound(#[allow(dead_code)] Problem);

/// No worker answered in time
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct NoWorker(#[allow(dead_code)] Problem);

/// PostgreSQL unavailable
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct DatabaseUnavailable(#[allow(dead_code)] Problem);

/// Missing or wrong API key or token
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct AdminUnauthorized(#[allow(dead_code)] Problem);

/// Admin endpoints are disabled, or a customer's token
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct AdminForbidden(#[allow(dead_code)] Problem);

/// The body is not JSON
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct NotJson(#[allow(dead_code)] Problem);

/// Body over 64 KiB
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct TooLarge(#[allow(dead_code)] Problem);

/// Not sent as `Content-Type: application/json`
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct NotSentAsJson(#[allow(dead_code)] Problem);

/// PostgreSQL or Temporal is unavailable right now; nothing was changed, try again
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct Unavailable(#[allow(dead_code)] Problem);

/// A query parameter is malformed
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct BadQuery(#[allow(dead_code)] Problem);
