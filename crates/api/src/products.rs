use crate::error::{Context, Problem};
use crate::extract::PathId;
use crate::responses::{
    AdminForbidden, AdminUnauthorized, BadQuery, DatabaseUnavailable, NotJson, NotSentAsJson,
    ProductNotFound, TooLarge,
};
use crate::{ApiContext, ApiError};
use axum::Json;
use axum::extract::State;
use orderflow_domain::ProductId;
use orderflow_store::{MAX_UNITS, ProductRow, Restocked};
use rust_decimal::Decimal;
use serde::Serialize;

/// A product and its stock.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Product {
    #[schema(example = "prod-001")]
    pub id: String,
    pub name: String,
    pub sku: String,
    #[schema(value_type = String, example = "999.99")]
    pub price: Decimal,
    /// Units that can still be ordered.
    pub available: i32,
    /// Units held by orders in flight.
    pub reserved: i32,
    /// Units of completed orders.
    pub sold: i32,
}

impl From<ProductRow> for Product {
    fn from(p: ProductRow) -> Self {
        Self {
            id: p.id,
            name: p.name,
            sku: p.sku,
            price: p.price,
            available: p.available,
            reserved: p.reserved,
            sold: p.sold,
        }
    }
}

/// The catalog with its stock.
#[utoipa::path(
    get,
    path = "/api/products",
    tag = "products",
    responses(
        (status = 200, description = "Every product", body = Vec<Product>),
        (status = 503, response = DatabaseUnavailable),
    )
)]
pub async fn list_products(State(ctx): State<ApiContext>) -> Result<Json<Vec<Product>>, ApiError> {
    Ok(Json(
        ctx.store
            .list_products()
            .await
            .context("listing products")?
            .into_iter()
            .map(Product::from)
            .collect(),
    ))
}

/// One product with its stock.
#[utoipa::path(
    get,
    path = "/api/products/{id}",
    tag = "products",
    params(("id" = String, Path, description = "e.g. prod-001")),
    responses(
        (status = 200, description = "The product", body = Product),
        (status = 400, response = BadQuery),
        (status = 404, response = ProductNotFound),
        (status = 503, response = DatabaseUnavailable),
    )
)]
pub async fn get_product(
    State(ctx): State<ApiContext>,
    PathId(id): PathId,
) -> Result<Json<Product>, ApiError> {
    ctx.store
        .product(id.as_str())
        .await?
        .map(|p| Json(p.into()))
        .ok_or_else(|| no_such_product(&id))
}

fn no_such_product(id: &ProductId) -> ApiError {
    ApiError::NotFound(format!("No product has id {id}."))
}

/// How many units arrived.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
pub struct Restock {
    /// 1 to 1,000,000.
    #[serde(deserialize_with = "crate::json::whole_number")]
    #[schema(minimum = 1, maximum = 1000000)]
    pub quantity: i64,
}

/// Add stock to a product (operators).
///
/// Needs an operator's bearer token (`AUTH_MODE=jwt`, `roles` containing `operator`) or the
/// `X-API-Key` header equal to `ADMIN_API_KEY`. With neither configured the endpoint is
/// disabled (403), not open.
#[utoipa::path(
    post,
    path = "/api/products/{id}/restock",
    tag = "admin",
    params(("id" = String, Path, description = "e.g. prod-001")),
    request_body = Restock,
    security(("api_key" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The product with its new stock", body = Product),
        (status = 401, response = AdminUnauthorized),
        (status = 403, response = AdminForbidden),
        (status = 400, response = NotJson),
        (status = 404, response = ProductNotFound),
        (status = 413, response = TooLarge),
        (status = 415, response = NotSentAsJson),
        (status = 422, description = "Quantity missing, not a whole number or out of range, or more units than the shop keeps count of", body = Problem, content_type = "application/problem+json"),
        (status = 503, response = DatabaseUnavailable),
    )
)]
#[tracing::instrument(skip(ctx, _admin, body))]
pub async fn restock_product(
    State(ctx): State<ApiContext>,
    _admin: crate::admin::Admin,
    PathId(id): PathId,
    crate::AppJson(body): crate::AppJson<Restock>,
) -> Result<Json<Product>, ApiError> {
    let units = i32::try_from(body.quantity)
        .ok()
        .filter(|q| (1..=1_000_000).contains(q))
        .ok_or_else(|| ApiError::Unprocessable {
            code: "invalid_field",
            detail: "quantity: must be a whole number from 1 to 1000000".into(),
            field: Some("quantity".into()),
        })?;
    let product = match ctx.store.restock(id.as_str(), units).await.context("restocking")? {
        Restocked::Done(product) => product,
        Restocked::NoSuchProduct => return Err(no_such_product(&id)),
        Restocked::TooMany => {
            return Err(ApiError::Unprocessable {
                code: "invalid_field",
                detail: format!(
                    "quantity: the product would hold more than {MAX_UNITS} units in all"
                ),
                field: Some("quantity".into()),
            });
        }
    };
    tracing::info!(units, available = product.available, "restocked");
    Ok(Json(product.into()))
}
