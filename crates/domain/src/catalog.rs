//! Pricing an order against the catalog. The catalog is authoritative: the client states the
//! price it saw, and an order whose prices differ from the catalog's is refused rather than
//! silently charged at a price the customer did not agree to (nor at one the client invented).

use crate::{Money, NewOrder, OrderDraft, OrderId, OrderLine, ProductId};

/// What pricing needs to know about a product.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogProduct {
    pub id: ProductId,
    pub name: String,
    pub price: Money,
}

/// Why a well-formed order cannot be accepted as it stands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderRejection {
    #[error("items[{index}].product_id: no product {product_id} in the catalog")]
    UnknownProduct { index: usize, product_id: ProductId },
    #[error(
        "items[{index}].price: {given} is not the price of {product_id}; the catalog price is {catalog}"
    )]
    PriceMismatch { index: usize, product_id: ProductId, given: Money, catalog: Money },
    #[error("the order's total is above the largest amount accepted, {max}", max = Money::MAX)]
    TotalTooLarge,
}

/// Turns a draft into an order priced by `catalog` (which may hold other products too).
pub fn price_order(
    order_id: OrderId,
    draft: &OrderDraft,
    catalog: &[CatalogProduct],
) -> Result<NewOrder, OrderRejection> {
    let mut lines = Vec::with_capacity(draft.lines.len());
    for (index, requested) in draft.lines.iter().enumerate() {
        let product = catalog.iter().find(|p| p.id == requested.product_id).ok_or_else(|| {
            OrderRejection::UnknownProduct { index, product_id: requested.product_id.clone() }
        })?;
        if product.price != requested.price {
            return Err(OrderRejection::PriceMismatch {
                index,
                product_id: product.id.clone(),
                given: requested.price,
                catalog: product.price,
            });
        }
        lines.push(OrderLine {
            product_id: product.id.clone(),
            name: product.name.clone(),
            quantity: requested.quantity,
            unit_price: product.price,
        });
    }
    let totals = lines.iter().map(OrderLine::total).collect::<Option<Vec<_>>>();
    let total = totals.and_then(Money::checked_sum).ok_or(OrderRejection::TotalTooLarge)?;
    Ok(NewOrder { order_id, customer_id: draft.customer_id.clone(), lines, total })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RequestedLine;
    use rust_decimal::Decimal;
    use std::str::FromStr;

    fn money(s: &str) -> Money {
        Money::parse("price", Decimal::from_str(s).unwrap()).unwrap()
    }

    fn catalog() -> Vec<CatalogProduct> {
        vec![
            CatalogProduct {
                id: ProductId::parse("prod-001").unwrap(),
                name: "iPhone 15 Pro".into(),
                price: money("999.99"),
            },
            CatalogProduct {
                id: ProductId::parse("prod-003").unwrap(),
                name: "AirPods Pro".into(),
                price: money("249.99"),
            },
        ]
    }

    fn draft(lines: &[(&str, i64, &str)]) -> OrderDraft {
        let lines = lines
            .iter()
            .map(|(p, q, price)| {
                RequestedLine::parse(p.to_string(), *q, Decimal::from_str(price).unwrap()).unwrap()
            })
            .collect();
        OrderDraft::parse("customer-001".into(), lines).unwrap()
    }

    #[test]
    fn prices_and_totals_come_from_the_catalog() {
        let order = price_order(
            OrderId::generate(),
            &draft(&[("prod-001", 2, "999.99"), ("prod-003", 1, "249.99")]),
            &catalog(),
        )
        .unwrap();
        assert_eq!(order.total, money("2249.97"));
        assert_eq!(order.lines[0].name, "iPhone 15 Pro");
        assert_eq!(order.lines[1].total(), Some(money("249.99")));
    }

    #[test]
    fn an_order_whose_total_is_above_the_largest_amount_is_refused() {
        let catalog = vec![CatalogProduct {
            id: ProductId::parse("gold").unwrap(),
            name: "Gold bar".into(),
            price: money("999999999.00"),
        }];
        let err =
            price_order(OrderId::generate(), &draft(&[("gold", 1000, "999999999.00")]), &catalog)
                .unwrap_err();
        assert_eq!(err, OrderRejection::TotalTooLarge);
        assert!(
            price_order(OrderId::generate(), &draft(&[("gold", 1, "999999999.00")]), &catalog)
                .is_ok()
        );
    }

    #[test]
    fn a_price_the_catalog_does_not_have_is_refused() {
        let err = price_order(OrderId::generate(), &draft(&[("prod-001", 1, "0.01")]), &catalog())
            .unwrap_err();
        assert!(matches!(err, OrderRejection::PriceMismatch { index: 0, .. }));
        assert!(err.to_string().contains("999.99"), "{err}");
    }

    #[test]
    fn an_unknown_product_is_refused() {
        let err = price_order(
            OrderId::generate(),
            &draft(&[("prod-003", 1, "249.99"), ("nope", 1, "1")]),
            &catalog(),
        )
        .unwrap_err();
        assert_eq!(
            err,
            OrderRejection::UnknownProduct {
                index: 1,
                product_id: ProductId::parse("nope").unwrap()
            }
        );
    }
}
