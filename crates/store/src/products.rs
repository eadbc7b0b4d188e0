use crate::{Result, Store, StoreError};
use orderflow_domain::{CatalogProduct, InvalidField, Money, ProductId};
use rust_decimal::Decimal;
use serde::Serialize;

/// A product as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProductRow {
    pub id: String,
    pub name: String,
    pub sku: String,
    pub price: Decimal,
    /// Units that can still be ordered.
    pub available: i32,
    /// Units held by orders in flight.
    pub reserved: i32,
    /// Units of completed orders.
    pub sold: i32,
}

/// A product to add to the catalog (tests and seeds).
#[derive(Debug, Clone)]
pub struct NewProduct {
    pub id: String,
    pub name: String,
    pub sku: String,
    pub price: Decimal,
    pub available: i32,
}

/// The most units of one product the shop keeps count of (available, held and sold together),
/// so that no counter (`INTEGER` columns) can ever overflow.
pub const MAX_UNITS: i32 = 1_000_000_000;

/// What a restock did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Restocked {
    Done(ProductRow),
    NoSuchProduct,
    /// It would take the product above [`MAX_UNITS`]; nothing changed.
    TooMany,
}

impl Store {
    pub async fn list_products(&self) -> Result<Vec<ProductRow>> {
        let products = sqlx::query_as!(
            ProductRow,
            "SELECT id, name, sku, price, available, reserved, sold FROM products ORDER BY id"
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(products)
    }

    pub async fn product(&self, id: &str) -> Result<Option<ProductRow>> {
        let product = sqlx::query_as!(
            ProductRow,
            "SELECT id, name, sku, price, available, reserved, sold FROM products WHERE id = $1",
            id
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(product)
    }

    pub async fn add_product(&self, product: &NewProduct) -> Result<()> {
        sqlx::query!(
            "INSERT INTO products (id, name, sku, price, available) VALUES ($1, $2, $3, $4, $5)",
            product.id,
            product.name,
            product.sku,
            product.price,
            product.available
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Adds `units` to what can be ordered, unless that would take the product's units (held
    /// and sold included) above [`MAX_UNITS`].
    pub async fn restock(&self, id: &str, units: i32) -> Result<Restocked> {
        let row = sqlx::query_as!(
            ProductRow,
            "UPDATE products SET available = available + $2, updated_at = now()
             WHERE id = $1 AND available::bigint + reserved + sold + $2 <= $3
             RETURNING id, name, sku, price, available, reserved, sold",
            id,
            i64::from(units),
            i64::from(MAX_UNITS)
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            Some(row) => Restocked::Done(row),
            None if self.product(id).await?.is_some() => Restocked::TooMany,
            None => Restocked::NoSuchProduct,
        })
    }

    /// The catalog entries for `ids` (unknown ids are simply absent), for pricing an order.
    pub async fn catalog(&self, ids: &[ProductId]) -> Result<Vec<CatalogProduct>> {
        let ids: Vec<String> = ids.iter().map(ProductId::to_string).collect();
        let rows = sqlx::query!("SELECT id, name, price FROM products WHERE id = ANY($1)", &ids)
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter()
            .map(|row| {
                Ok(CatalogProduct {
                    id: ProductId::parse(row.id).map_err(corrupt)?,
                    name: row.name,
                    price: Money::parse("price", row.price).map_err(corrupt)?,
                })
            })
            .collect()
    }
}

/// A row that violates a domain rule the schema could not express: a bug or manual edit.
fn corrupt(e: InvalidField) -> StoreError {
    StoreError::Corrupt(e.to_string())
}
