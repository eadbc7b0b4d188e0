//! Repository tests against a real PostgreSQL, a fresh database per test.

use futures::future::join_all;
use orderflow_domain::PaymentStatus::Authorized;
use orderflow_domain::{
    CustomerId, ErrorCode, IdempotencyKey, Money, NewOrder, NotificationKind, OrderEnding, OrderId,
    OrderLine, OrderStatus, ProductId, Quantity,
};
use orderflow_store::testing::{TestDatabase, fresh_database, server_from_env};
use orderflow_store::{CancelOutcome, Confirmation, KeyClaim, NewProduct, Store};
use rust_decimal::Decimal;

async fn store() -> TestDatabase {
    fresh_database(&server_from_env()).await
}

async fn add_product(store: &Store, id: &str, available: i32) {
    store
        .add_product(&NewProduct {
            id: id.into(),
            name: format!("Test {id}"),
            sku: format!("SKU-{id}"),
            price: Decimal::new(1000, 2),
            available,
        })
        .await
        .unwrap();
}

fn order(lines: &[(&str, u32)]) -> NewOrder {
    let price = Money::parse("price", Decimal::new(1000, 2)).unwrap();
    let lines: Vec<OrderLine> = lines
        .iter()
        .map(|(product, quantity)| OrderLine {
            product_id: ProductId::parse(*product).unwrap(),
            name: product.to_string(),
            quantity: Quantity::parse(i64::from(*quantity)).unwrap(),
            unit_price: price,
        })
        .collect();
    NewOrder {
        order_id: OrderId::generate(),
        customer_id: CustomerId::parse("customer-1").unwrap(),
        total: Money::checked_sum(lines.iter().map(|l| l.total().unwrap())).unwrap(),
        lines,
    }
}

/// (available, reserved, sold)
async fn stock(store: &Store, id: &str) -> (i32, i32, i32) {
    let p = store.product(id).await.unwrap().unwrap();
    (p.available, p.reserved, p.sold)
}

async fn placed(store: &Store, lines: &[(&str, u32)]) -> OrderId {
    let order = order(lines);
    assert!(store.insert_order(&order, None).await.unwrap());
    order.order_id
}

#[tokio::test]
async fn inserting_an_order_twice_writes_it_once() {
    let store = store().await;
    let order = order(&[("prod-001", 2), ("prod-003", 1)]);
    assert!(store.insert_order(&order, None).await.unwrap());
    assert!(!store.insert_order(&order, None).await.unwrap());
    let row = store.order(order.order_id).await.unwrap().unwrap();
    assert_eq!(row.status, OrderStatus::Pending);
    assert_eq!(row.total_amount, Decimal::new(3000, 2));
    assert_eq!(row.workflow_id, order.order_id.workflow_id().to_string());
    let items: i64 = sqlx::query_scalar("SELECT count(*) FROM order_items WHERE order_id = $1")
        .bind(order.order_id.as_uuid())
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(items, 2);
}

#[tokio::test]
async fn reserve_confirm_moves_stock_to_sold_once() {
    let store = store().await;
    add_product(&store, "p", 10).await;
    let id = placed(&store, &[("p", 3)]).await;

    store.reserve_stock(id, None).await.unwrap().unwrap();
    store.reserve_stock(id, None).await.unwrap().unwrap(); // a retry
    assert_eq!(stock(&store, "p").await, (7, 3, 0));
    assert_eq!(store.order(id).await.unwrap().unwrap().status, OrderStatus::Payment);

    assert_eq!(store.confirm_order(id).await.unwrap(), Confirmation::Confirmed);
    assert_eq!(store.confirm_order(id).await.unwrap(), Confirmation::AlreadyConfirmed); // a retry
    assert_eq!(stock(&store, "p").await, (7, 0, 3));
    let row = store.order(id).await.unwrap().unwrap();
    assert_eq!(row.status, OrderStatus::Completed);
    assert!(row.completed_at.is_some());
}

#[tokio::test]
async fn reservation_is_all_or_nothing() {
    let store = store().await;
    add_product(&store, "a", 5).await;
    add_product(&store, "b", 1).await;
    let id = placed(&store, &[("a", 2), ("b", 2)]).await;

    let shortage = store.reserve_stock(id, None).await.unwrap().unwrap_err();
    assert_eq!((shortage.product_id.as_str(), shortage.requested, shortage.available), ("b", 2, 1));
    assert_eq!(stock(&store, "a").await, (5, 0, 0), "the first line was not kept");
    assert_eq!(stock(&store, "b").await, (1, 0, 0));
}

/// Steps run only after the workflow wrote the order; if the row is missing anyway, the step
/// fails (and is retried) rather than succeeding on nothing.
#[tokio::test]
async fn stock_moves_for_an_order_that_does_not_exist_fail_and_change_nothing() {
    let store = store().await;
    add_product(&store, "p", 4).await;
    let missing = OrderId::generate();
    assert!(store.reserve_stock(missing, None).await.is_err());
    assert!(store.confirm_order(missing).await.is_err());
    let amount = Money::parse("amount", Decimal::ONE).unwrap();
    let recorded = store.record_authorization(missing, "pay_x", amount, Authorized).await;
    assert_eq!(recorded.unwrap(), None);
    assert!(store.payment(missing).await.unwrap().is_none());
    assert_eq!(stock(&store, "p").await, (4, 0, 0));
}

#[tokio::test]
async fn release_gives_stock_back_and_ends_the_order_once() {
    let store = store().await;
    add_product(&store, "p", 4).await;
    let id = placed(&store, &[("p", 4)]).await;
    store.reserve_stock(id, None).await.unwrap().unwrap();
    assert_eq!(stock(&store, "p").await, (0, 4, 0));

    let ending =
        OrderEnding::Failed { code: ErrorCode::PaymentDeclined, message: "declined".into() };
    store.release_stock(id, &ending).await.unwrap();
    store.release_stock(id, &ending).await.unwrap(); // a retry
    assert_eq!(stock(&store, "p").await, (4, 0, 0));
    let row = store.order(id).await.unwrap().unwrap();
    assert_eq!(
        (row.status.as_str(), row.error_code.map(|c| c.as_str())),
        ("failed", Some("payment_declined"))
    );

    // Releasing an order that never held stock only records how it ended.
    let never = placed(&store, &[("p", 1)]).await;
    store.release_stock(never, &OrderEnding::Cancelled).await.unwrap();
    assert_eq!(store.order(never).await.unwrap().unwrap().status, OrderStatus::Cancelled);
    assert_eq!(stock(&store, "p").await, (4, 0, 0));
}

#[tokio::test]
async fn concurrent_orders_for_the_last_units_sell_exactly_those_units() {
    let store = store().await;
    add_product(&store, "scarce", 25).await;
    let mut ids = Vec::new();
    for _ in 0..40 {
        ids.push(placed(&store, &[("scarce", 1)]).await);
    }
    let results = join_all(ids.iter().map(|id| {
        let store = store.clone();
        let id = *id;
        async move { store.reserve_stock(id, None).await.unwrap() }
    }))
    .await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 25);
    assert_eq!(stock(&store, "scarce").await, (0, 25, 0));
}

#[tokio::test]
async fn orders_locking_the_same_products_in_opposite_orders_do_not_deadlock() {
    let store = store().await;
    add_product(&store, "x", 1000).await;
    add_product(&store, "y", 1000).await;
    let mut ids = Vec::new();
    for i in 0..30 {
        let lines: &[(&str, u32)] =
            if i % 2 == 0 { &[("x", 1), ("y", 1)] } else { &[("y", 1), ("x", 1)] };
        ids.push(placed(&store, lines).await);
    }
    let results = join_all(ids.iter().enumerate().map(|(i, id)| {
        let store = store.clone();
        let id = *id;
        async move {
            store.reserve_stock(id, None).await?.expect("enough stock");
            if i % 3 == 0 {
                store.release_stock(id, &OrderEnding::Cancelled).await
            } else {
                store.confirm_order(id).await.map(|c| assert_eq!(c, Confirmation::Confirmed))
            }
        }
    }))
    .await;
    for result in results {
        result.expect("no deadlock or other error");
    }
    assert_eq!(stock(&store, "x").await, (1000 - 20, 0, 20));
    assert_eq!(stock(&store, "y").await, (1000 - 20, 0, 20));
}

/// A new order's lines take a key-share lock on their products (the foreign key), in the order
/// the customer wrote them. Stock moves must not take a lock that conflicts with it, or a new
/// order naming products in the opposite order deadlocks with them.
#[tokio::test]
async fn placing_orders_while_others_move_stock_does_not_deadlock() {
    let store = store().await;
    add_product(&store, "x", 10_000).await;
    add_product(&store, "y", 10_000).await;
    let mut moving = Vec::new();
    for _ in 0..60 {
        moving.push(placed(&store, &[("x", 1), ("y", 1)]).await);
    }
    let moves = join_all(moving.iter().map(|id| {
        let (store, id) = (store.clone(), *id);
        async move {
            store.reserve_stock(id, None).await?.expect("enough stock");
            store.confirm_order(id).await.map(|c| assert_eq!(c, Confirmation::Confirmed))
        }
    }));
    let placements = join_all((0..60).map(|_| {
        let store = store.clone();
        async move { store.insert_order(&order(&[("y", 1), ("x", 1)]), None).await }
    }));
    let (moves, placements) = tokio::join!(moves, placements);
    for result in moves {
        result.expect("reserve and confirm without a deadlock");
    }
    for result in placements {
        assert!(result.expect("insert without a deadlock"));
    }
    assert_eq!(stock(&store, "x").await, (9_940, 0, 60));
}

#[tokio::test]
async fn an_order_has_at_most_one_payment() {
    let store = store().await;
    let id = placed(&store, &[("prod-001", 1)]).await;
    let amount = Money::parse("amount", Decimal::new(99999, 2)).unwrap();
    store.record_authorization(id, "pay_1", amount, Authorized).await.unwrap().unwrap();
    store.record_authorization(id, "pay_1", amount, Authorized).await.unwrap().unwrap(); // a retry
    store.record_capture(id).await.unwrap();
    store.record_capture(id).await.unwrap(); // a retry
    store.record_decline(id, None, amount, "too late").await.unwrap(); // cannot replace it
    let payment = store.payment(id).await.unwrap().unwrap();
    assert_eq!(
        (payment.status.as_str(), payment.payment_id.as_deref()),
        ("captured", Some("pay_1"))
    );
    assert_eq!(store.order(id).await.unwrap().unwrap().payment_id.as_deref(), Some("pay_1"));

    store.record_refund(id, "re_1").await.unwrap();
    store.record_refund(id, "re_2").await.unwrap(); // a retry changes nothing
    let payment = store.payment(id).await.unwrap().unwrap();
    assert_eq!((payment.status.as_str(), payment.refund_id.as_deref()), ("refunded", Some("re_1")));
}

#[tokio::test]
async fn notifications_are_recorded_per_attempt_and_mark_the_customer_notified() {
    let store = store().await;
    let id = placed(&store, &[("prod-001", 1)]).await;
    let kind = NotificationKind::OrderConfirmed;
    store.record_notification(id, kind, "email", "hi", Some("smtp down")).await.unwrap();
    assert!(!store.notification_sent(id, kind).await.unwrap());
    assert!(!store.order(id).await.unwrap().unwrap().customer_notified);
    store.record_notification(id, kind, "email", "hi", None).await.unwrap();
    assert!(store.notification_sent(id, kind).await.unwrap());
    assert!(store.order(id).await.unwrap().unwrap().customer_notified);
    let attempts: i32 =
        sqlx::query_scalar("SELECT attempts FROM notifications WHERE order_id = $1")
            .bind(id.as_uuid())
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(attempts, 2);
}

#[tokio::test]
async fn an_idempotency_key_belongs_to_the_first_order_that_claims_it() {
    let store = store().await;
    let key = IdempotencyKey::parse("key-1").unwrap();
    let claims = join_all((0..10).map(|_| {
        let store = store.clone();
        let key = key.clone();
        async move {
            let order = OrderId::generate();
            (
                order,
                store.claim_idempotency_key("customer:a", &key, b"hash", order, TTL).await.unwrap(),
            )
        }
    }))
    .await;
    let winners: Vec<OrderId> =
        claims.iter().filter(|(_, c)| *c == KeyClaim::New).map(|(o, _)| *o).collect();
    assert_eq!(winners.len(), 1, "exactly one claim wins");
    let owner = winners[0];
    for (_, claim) in &claims {
        if *claim != KeyClaim::New {
            assert_eq!(*claim, KeyClaim::Existing { order_id: owner, same_request: true });
        }
    }
    assert_eq!(
        store
            .claim_idempotency_key("customer:a", &key, b"other", OrderId::generate(), TTL)
            .await
            .unwrap(),
        KeyClaim::Existing { order_id: owner, same_request: false }
    );
}

const TTL: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

#[tokio::test]
async fn an_idempotency_key_is_private_to_its_sender_and_expires() {
    let store = store().await;
    let key = IdempotencyKey::parse("key-1").unwrap();
    let (first, second, third) = (OrderId::generate(), OrderId::generate(), OrderId::generate());
    let claim = |scope: &'static str, order: OrderId, ttl| {
        let (store, key) = (store.clone(), key.clone());
        async move { store.claim_idempotency_key(scope, &key, b"hash", order, ttl).await.unwrap() }
    };
    assert_eq!(claim("customer:a", first, TTL).await, KeyClaim::New);
    assert_eq!(claim("customer:b", second, TTL).await, KeyClaim::New, "another sender's key");
    assert_eq!(
        claim("customer:a", third, TTL).await,
        KeyClaim::Existing { order_id: first, same_request: true }
    );
    // Two hours pass (for these keys): with a TTL of one hour they have expired.
    sqlx::query("UPDATE idempotency_keys SET created_at = created_at - interval '2 hours'")
        .execute(store.pool())
        .await
        .unwrap();
    let one_hour = std::time::Duration::from_secs(3600);
    assert_eq!(claim("customer:a", third, one_hour).await, KeyClaim::New, "an expired key is new");
    assert_eq!(store.expire_idempotency_keys(one_hour).await.unwrap(), 1, "customer:b's key");
    assert_eq!(
        claim("customer:a", first, TTL).await,
        KeyClaim::Existing { order_id: third, same_request: true }
    );
}

#[tokio::test]
async fn the_demo_catalog_is_the_original_one_and_loading_it_again_changes_nothing() {
    let store = store().await;
    let id = placed(&store, &[("prod-001", 1)]).await;
    store.reserve_stock(id, None).await.unwrap().unwrap();
    store.load_demo_catalog().await.unwrap();
    let products = store.list_products().await.unwrap();
    assert_eq!(products.len(), 8);
    let first = &products[0];
    assert_eq!(
        (
            first.id.as_str(),
            first.name.as_str(),
            first.sku.as_str(),
            first.price,
            first.available,
            first.reserved
        ),
        ("prod-001", "iPhone 15 Pro", "IPHONE-15-PRO-128", Decimal::new(99999, 2), 49, 1)
    );
    assert_eq!(products.iter().map(|p| p.available + p.reserved).sum::<i32>(), 375);
}

/// A step run late by a worker that froze or lost its workflow must not hold stock, sell stock
/// or keep money for an order that has since been closed.
#[tokio::test]
async fn a_closed_order_is_fenced_against_late_steps() {
    let store = store().await;
    add_product(&store, "p", 10).await;
    let ending = OrderEnding::Cancelled;

    // Closed before its reservation ran: the late reservation holds nothing.
    let never_reserved = placed(&store, &[("p", 2)]).await;
    let first = store.close_order(never_reserved, &ending).await.unwrap();
    assert_eq!((first.status.as_str(), first.now), ("cancelled", true));
    let retry = store.close_order(never_reserved, &ending).await.unwrap();
    assert_eq!((retry.status.as_str(), retry.now), ("cancelled", false), "a retry changes nothing");
    store.reserve_stock(never_reserved, None).await.unwrap().unwrap();
    assert_eq!(stock(&store, "p").await, (10, 0, 0));
    assert_eq!(store.order(never_reserved).await.unwrap().unwrap().status, OrderStatus::Cancelled);

    // Closed while holding stock: a late confirmation sells nothing; release gives it back.
    let reserved = placed(&store, &[("p", 3)]).await;
    store.reserve_stock(reserved, None).await.unwrap().unwrap();
    store.close_order(reserved, &ending).await.unwrap();
    assert_eq!(store.confirm_order(reserved).await.unwrap(), Confirmation::Refused);
    assert_eq!(stock(&store, "p").await, (7, 3, 0));
    store.release_stock(reserved, &ending).await.unwrap();
    assert_eq!(stock(&store, "p").await, (10, 0, 0));
    assert_eq!(store.order(reserved).await.unwrap().unwrap().status, OrderStatus::Cancelled);

    // A late authorization is refused, so the caller voids it.
    let amount = Money::parse("amount", Decimal::new(1000, 2)).unwrap();
    let late = store.record_authorization(reserved, "pay_late", amount, Authorized).await;
    assert_eq!(late.unwrap(), None);
    assert!(store.payment(reserved).await.unwrap().is_none());

    // A completed order is not reopened by closing it.
    let done = placed(&store, &[("p", 1)]).await;
    store.reserve_stock(done, None).await.unwrap().unwrap();
    let recorded = store.record_authorization(done, "pay_done", amount, Authorized).await;
    assert!(recorded.unwrap().is_some());
    assert_eq!(store.confirm_order(done).await.unwrap(), Confirmation::Confirmed);
    assert_eq!(
        store.close_order(done, &ending).await.unwrap().status,
        OrderStatus::Completed,
        "not reopened"
    );
    assert_eq!(store.order(done).await.unwrap().unwrap().status, OrderStatus::Completed);
}

/// The customer's cancellation and the confirmation race under the order's row lock: whichever
/// commits first wins, and the other learns it.
#[tokio::test]
async fn cancellation_and_confirmation_exclude_each_other() {
    let store = store().await;
    add_product(&store, "p", 100).await;
    let failed =
        OrderEnding::Failed { code: ErrorCode::PaymentDeclined, message: "declined".into() };

    // Cancellation first: the order is never confirmed, and closing it for a failure ends it
    // cancelled, as the customer was promised.
    let cancelled = placed(&store, &[("p", 2)]).await;
    store.reserve_stock(cancelled, None).await.unwrap().unwrap();
    assert_eq!(store.request_cancellation(cancelled).await.unwrap(), CancelOutcome::Recorded);
    let again = store.request_cancellation(cancelled).await.unwrap();
    assert_eq!(again, CancelOutcome::Recorded, "asking twice");
    assert_eq!(store.begin_confirmation(cancelled).await.unwrap(), Confirmation::Refused);
    assert_eq!(store.confirm_order(cancelled).await.unwrap(), Confirmation::Refused);
    assert_eq!(store.close_order(cancelled, &failed).await.unwrap().status, OrderStatus::Cancelled);
    store.release_stock(cancelled, &failed).await.unwrap();
    assert_eq!(stock(&store, "p").await, (100, 0, 0));
    let row = store.order(cancelled).await.unwrap().unwrap();
    assert_eq!((row.status.as_str(), row.error_code), ("cancelled", None));

    // Confirmation first: once it has begun (before the payment is captured), the
    // cancellation is too late; after it, too.
    let confirmed = placed(&store, &[("p", 1)]).await;
    store.reserve_stock(confirmed, None).await.unwrap().unwrap();
    assert_eq!(store.begin_confirmation(confirmed).await.unwrap(), Confirmation::Confirmed);
    assert_eq!(
        store.begin_confirmation(confirmed).await.unwrap(),
        Confirmation::Confirmed,
        "a retry"
    );
    assert_eq!(store.request_cancellation(confirmed).await.unwrap(), CancelOutcome::Confirming);
    assert_eq!(store.confirm_order(confirmed).await.unwrap(), Confirmation::Confirmed);
    assert_eq!(
        store.request_cancellation(confirmed).await.unwrap(),
        CancelOutcome::Ended(OrderStatus::Completed)
    );
    assert_eq!(store.begin_confirmation(confirmed).await.unwrap(), Confirmation::AlreadyConfirmed);

    // Concurrently, many times: never both.
    for _ in 0..60 {
        let id = placed(&store, &[("p", 1)]).await;
        store.reserve_stock(id, None).await.unwrap().unwrap();
        let (cancel, confirm) =
            tokio::join!(store.request_cancellation(id), store.begin_confirmation(id));
        let confirmed = confirm.unwrap() == Confirmation::Confirmed;
        let cancelled = cancel.unwrap() == CancelOutcome::Recorded;
        assert_ne!(cancelled, confirmed, "exactly one of them wins");
        store.release_stock(id, &OrderEnding::Cancelled).await.unwrap();
    }
}
