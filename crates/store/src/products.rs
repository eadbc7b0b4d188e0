use crate::{Result, Store};
use orderflow_domain::{CatalogProduct, InvalidField, Money, ProductId};
use rust_decimal::Decimal;
use serde::Serialize;

/// A product as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
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

const COLUMNS: &str = "id, name, sku, price, available, reserved, sold";

impl Store {
    pub async fn list_products(&self) -> Result<Vec<ProductRow>> {
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM products ORDER BY id"))
            .fetch_all(&self.pool)
            .await
    }

    pub async fn product(&self, id: &str) -> Result<Option<ProductRow>> {
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM products WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
    }

    pub async fn add_product(&self, product: &NewProduct) -> Result<()> {
        sqlx::query(
            "INSERT INTO products (id, name, sku, price, available) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&product.id)
        .bind(&product.name)
        .bind(&product.sku)
        .bind(product.price)
        .bind(product.available)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Adds `units` to what can be ordered, unless that would take the product's units (held
    /// and sold included) above [`MAX_UNITS`].
    pub async fn restock(&self, id: &str, units: i32) -> Result<Restocked> {
        let row: Option<ProductRow> = sqlx::query_as(&format!(
            "UPDATE products SET available = available + $2, updated_at = now()
             WHERE id = $1 AND available::bigint + reserved + sold + $2 <= $3
             RETURNING {COLUMNS}"
        ))
        .bind(id)
        .bind(units)
        .bind(i64::from(MAX_UNITS))
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
        let ids: Vec<&str> = ids.iter().map(ProductId::as_str).collect();
        let rows: Vec<(String, String, Decimal)> =
            sqlx::query_as("SELECT id, name, price FROM products WHERE id = ANY($1)")
                .bind(&ids)
                .fetch_all(&self.pool)
                .await?;
        rows.into_iter()
            .map(|(id, name, price)| {
                Ok(CatalogProduct {
                    id: ProductId::parse(id).map_err(corrupt)?,
                    name,
                    price: Money::parse("price", price).map_err(corrupt)?,
                })
            })
            .collect()
    }
}

/// A row that violates a domain rule the schema could not express: a bug or manual edit.
pub(crate) fn corrupt(e: InvalidField) -> sqlx::Error {
    sqlx::Error::Decode(format!("invalid value in database: {e}").into())
}
