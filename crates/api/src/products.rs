use crate::{ApiContext, ApiError};
use axum::Json;
use axum::extract::{Path, State};
use orderflow_store::ProductRow;

pub async fn list_products(
    State(ctx): State<ApiContext>,
) -> Result<Json<Vec<ProductRow>>, ApiError> {
    Ok(Json(ctx.store.list_products().await?))
}

pub async fn get_product(
    State(ctx): State<ApiContext>,
    Path(id): Path<String>,
) -> Result<Json<ProductRow>, ApiError> {
    ctx.store
        .product(&id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("No product has id {id}.")))
}
