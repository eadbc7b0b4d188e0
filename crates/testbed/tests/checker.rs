//! The chaos checker is tested like the code it checks: a database it fills itself with a small
//! consistent world (a completed, a failed and a cancelled order, their stock, payments and the
//! provider's ledger, the clients' records), on which it must report nothing; then each
//! invariant is broken alone, by planting one violation in that world, and the checker must
//! report exactly that invariant. `plant` matches every `Invariant`, so a new invariant does not
//! compile without its plant, and one that no state can break fails here.

use orderflow_providers::payment_provider::IntentStatus;
use orderflow_store::testing::{TestDatabase, fresh_database, server_from_env};
use orderflow_testbed::chaos::check::{
    Evidence, Findings, Invariant, LedgerIntent, TemporalEvidence, check,
};
use orderflow_testbed::chaos::{Kind, OrderAttempt};
use rust_decimal::Decimal;
use sqlx::{Connection, PgConnection};
use std::collections::BTreeMap;
use strum::IntoEnumIterator;
use uuid::Uuid;

const COMPLETED: Uuid = Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_000a);
const FAILED: Uuid = Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_000b);
const CANCELLED: Uuid = Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_000c);

fn workflow(order: Uuid) -> String {
    format!("order-{order}")
}

fn money(text: &str) -> Decimal {
    text.parse().unwrap()
}

/// Everything but PostgreSQL that the checker reads, owned, so that a case can change it.
#[derive(Clone)]
struct World {
    attempts: Vec<OrderAttempt>,
    initial_stock: BTreeMap<String, i32>,
    ledger: Vec<LedgerIntent>,
    temporal: TemporalEvidence,
}

impl World {
    fn evidence(&self) -> Evidence<'_> {
        Evidence {
            attempts: &self.attempts,
            initial_stock: &self.initial_stock,
            ledger: &self.ledger,
            temporal: &self.temporal,
        }
    }

    fn attempt(&mut self, order: Uuid) -> &mut OrderAttempt {
        let id = workflow(order);
        self.attempts.iter_mut().find(|a| a.workflow_id() == Some(id.as_str())).unwrap()
    }

    fn intent(&mut self, order: Uuid) -> &mut LedgerIntent {
        let id = order.to_string();
        self.ledger.iter_mut().find(|i| i.order_id == id).unwrap()
    }
}

fn attempt(order: Uuid, customer: &str, key: Option<&str>, cancelled: bool) -> OrderAttempt {
    OrderAttempt {
        kind: Kind::Normal,
        idempotency_key: key.map(str::to_owned),
        acknowledged: vec![workflow(order)],
        requests: 1,
        cancel_requested: cancelled,
        cancel: cancelled.then_some(202),
        customer: customer.into(),
        snooped: vec![404],
    }
}

fn intent(order: Uuid, status: IntentStatus, amount: &str, captured: &str) -> LedgerIntent {
    LedgerIntent {
        id: format!("pi_{}", order.simple()),
        order_id: order.to_string(),
        status,
        amount: money(amount),
        captured: money(captured),
        refunded: Decimal::ZERO,
    }
}

/// Fills the database with three ended orders as OrderFlow leaves them, and returns what the
/// clients, the provider and Temporal say of them.
async fn consistent_world(db: &mut PgConnection) -> World {
    let initial_stock =
        sqlx::query_as::<_, (String, i32)>("SELECT id, available + reserved + sold FROM products")
            .fetch_all(&mut *db)
            .await
            .unwrap()
            .into_iter()
            .collect();
    sqlx::raw_sql(&format!(
        r#"
        INSERT INTO orders (id, workflow_id, customer_id, status, current_step, total_amount,
                            error_code, error_message, payment_id, completed_at)
        VALUES ('{COMPLETED}', 'order-{COMPLETED}', 'alice', 'completed', 'notify_customer',
                1999.98, NULL, NULL, 'pi_{c}', now()),
               ('{FAILED}', 'order-{FAILED}', 'bob', 'failed', 'notify_customer',
                1199.99, 'payment_declined', 'declined', 'pi_{f}', now()),
               ('{CANCELLED}', 'order-{CANCELLED}', 'carol', 'cancelled', 'notify_customer',
                249.99, NULL, NULL, 'pi_{x}', now());
        INSERT INTO order_items (order_id, product_id, name, quantity, unit_price)
        VALUES ('{COMPLETED}', 'prod-001', 'iPhone 15 Pro', 2, 999.99),
               ('{FAILED}', 'prod-002', 'MacBook Air M2', 1, 1199.99),
               ('{CANCELLED}', 'prod-003', 'AirPods Pro', 1, 249.99);
        INSERT INTO reservations (order_id, product_id, quantity, status)
        VALUES ('{COMPLETED}', 'prod-001', 2, 'sold'),
               ('{FAILED}', 'prod-002', 1, 'released'),
               ('{CANCELLED}', 'prod-003', 1, 'released');
        UPDATE products SET available = available - 2, sold = sold + 2 WHERE id = 'prod-001';
        INSERT INTO payments (order_id, payment_id, amount, status, captured, refunded)
        VALUES ('{COMPLETED}', 'pi_{c}', 1999.98, 'captured', 1999.98, 0),
               ('{FAILED}', 'pi_{f}', 1199.99, 'failed', 0, 0),
               ('{CANCELLED}', 'pi_{x}', 249.99, 'voided', 0, 0);
        INSERT INTO idempotency_keys (scope, key, request_hash, order_id)
        VALUES ('open', 'key-alice', '\x00', '{COMPLETED}');
        "#,
        c = COMPLETED.simple(),
        f = FAILED.simple(),
        x = CANCELLED.simple(),
    ))
    .execute(&mut *db)
    .await
    .unwrap();
    World {
        attempts: vec![
            attempt(COMPLETED, "alice", Some("key-alice"), false),
            attempt(FAILED, "bob", None, false),
            attempt(CANCELLED, "carol", None, true),
        ],
        initial_stock,
        ledger: vec![
            intent(COMPLETED, IntentStatus::Captured, "1999.98", "1999.98"),
            intent(FAILED, IntentStatus::Failed, "1199.99", "0"),
            intent(CANCELLED, IntentStatus::Voided, "249.99", "0"),
        ],
        temporal: TemporalEvidence { running: 0, nondeterminism: vec![], replayed: 3 },
    }
}

/// Breaks `invariant`, and only it, in the database (inside the case's transaction) or in
/// the evidence. Returns what the report must mention.
async fn plant(invariant: Invariant, db: &mut PgConnection, world: &mut World) -> String {
    use Invariant::*;
    let stranger = Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_00ff);
    match invariant {
        AcknowledgedOrderUnknown => {
            world.attempts.push(attempt(stranger, "dave", None, false));
            workflow(stranger)
        }
        OrderNotFinished => {
            exec(
                db,
                format!(
                    "INSERT INTO orders (id, workflow_id, customer_id, status, current_step,
                                     total_amount, hold_expires_at)
                 VALUES ('{stranger}', 'order-{stranger}', 'dave', 'payment', 'await_payment',
                         10, now() - interval '10 minutes')"
                ),
            )
            .await;
            "past its payment hold".into()
        }
        IdempotencyKeySplit => {
            world.attempt(COMPLETED).acknowledged.push(workflow(stranger));
            "key-alice".into()
        }
        CancelAcceptedNotHonoured => {
            let alice = world.attempt(COMPLETED);
            (alice.cancel_requested, alice.cancel) = (true, Some(202));
            workflow(COMPLETED)
        }
        CancelRefusedButCancelled => {
            world.attempt(CANCELLED).cancel = Some(409);
            workflow(CANCELLED)
        }
        CancelledWithoutRequest => {
            let carol = world.attempt(CANCELLED);
            (carol.cancel_requested, carol.cancel) = (false, None);
            workflow(CANCELLED)
        }
        OrderOfAnotherCustomer => {
            exec(db, format!("UPDATE orders SET customer_id = 'mallory' WHERE id = '{COMPLETED}'"))
                .await;
            "mallory".into()
        }
        NosyCustomerServed => {
            world.attempt(FAILED).snooped.push(200);
            "bob".into()
        }
        ProductWithoutInitialStock => {
            world.initial_stock.remove("prod-008");
            "prod-008".into()
        }
        Oversold => {
            // Only a schema without its CHECK (available >= 0) lets this happen: a migration
            // that drops it is the path the checker guards against.
            exec(
                db,
                format!(
                    "ALTER TABLE products DROP CONSTRAINT products_available_check;
                 UPDATE products SET available = -1, sold = 51 WHERE id = 'prod-001';
                 UPDATE reservations SET quantity = 51 WHERE order_id = '{COMPLETED}';
                 UPDATE order_items SET quantity = 51 WHERE order_id = '{COMPLETED}';"
                ),
            )
            .await;
            "prod-001".into()
        }
        StockCreatedOrLost => {
            exec(db, "UPDATE products SET available = available + 1 WHERE id = 'prod-005'").await;
            "prod-005".into()
        }
        CountersDisagreeWithReservations => {
            exec(
                db,
                "UPDATE products SET available = available - 1, sold = sold + 1
                 WHERE id = 'prod-005'",
            )
            .await;
            "prod-005".into()
        }
        ReservationLeftHeld => {
            exec(
                db,
                format!(
                    "INSERT INTO reservations (order_id, product_id, quantity, status)
                 VALUES ('{COMPLETED}', 'prod-004', 1, 'held');
                 UPDATE products SET available = available - 1, reserved = reserved + 1
                  WHERE id = 'prod-004';"
                ),
            )
            .await;
            "prod-004".into()
        }
        EndedOrderSoldStock => {
            exec(
                db,
                format!(
                    "UPDATE reservations SET status = 'sold' WHERE order_id = '{FAILED}';
                 UPDATE products SET available = available - 1, sold = sold + 1
                  WHERE id = 'prod-002';"
                ),
            )
            .await;
            workflow(FAILED)
        }
        CompletedOrderNotSold => {
            exec(
                db,
                format!(
                    "UPDATE reservations SET status = 'released' WHERE order_id = '{COMPLETED}';
                 UPDATE products SET available = available + 2, sold = sold - 2
                  WHERE id = 'prod-001';"
                ),
            )
            .await;
            workflow(COMPLETED)
        }
        CompletedOrderNotCaptured => {
            exec(db, format!("UPDATE payments SET captured = 1000 WHERE order_id = '{COMPLETED}'"))
                .await;
            world.intent(COMPLETED).captured = money("1000");
            workflow(COMPLETED)
        }
        ChargedMoreThanOnce => {
            let mut second = intent(COMPLETED, IntentStatus::Captured, "1999.98", "1999.98");
            second.id = "pi_second".into();
            world.ledger.push(second);
            workflow(COMPLETED)
        }
        EndedOrderKeptMoney => {
            exec(
                db,
                format!(
                    "UPDATE payments SET status = 'captured', captured = amount
                  WHERE order_id = '{FAILED}'"
                ),
            )
            .await;
            let bob = world.intent(FAILED);
            (bob.status, bob.captured) = (IntentStatus::Captured, bob.amount);
            workflow(FAILED)
        }
        AuthorizationLeftOpen => {
            let mut open = intent(CANCELLED, IntentStatus::Authorized, "249.99", "0");
            open.id = "pi_open".into();
            world.ledger.push(open);
            "pi_open".into()
        }
        MoneyForUnknownOrder => {
            world.ledger.push(intent(stranger, IntentStatus::Captured, "10", "10"));
            stranger.to_string()
        }
        BooksDisagreeWithLedger => {
            let carol = world.intent(CANCELLED);
            (carol.status, carol.captured, carol.refunded) =
                (IntentStatus::Refunded, carol.amount, carol.amount);
            workflow(CANCELLED)
        }
        WorkflowStillRunning => {
            world.temporal.running = 1;
            "1 open workflow".into()
        }
        NonDeterminism => {
            world.temporal.nondeterminism.push("worker-1.log: 1 line(s)".into());
            "worker-1.log".into()
        }
    }
}

async fn exec(db: &mut PgConnection, sql: impl AsRef<str>) {
    sqlx::raw_sql(sql.as_ref()).execute(db).await.expect("the plant applies");
}

async fn run(db: &mut PgConnection, world: &World) -> Findings {
    check(db, &world.evidence()).await.expect("the checker runs")
}

#[tokio::test]
async fn the_checker_reports_each_planted_violation_and_nothing_else() {
    let database: TestDatabase = fresh_database(&server_from_env()).await;
    let mut db = database.pool().acquire().await.unwrap();
    let world = consistent_world(&mut db).await;

    let clean = run(&mut db, &world).await;
    assert!(clean.violations.is_empty(), "the consistent world: {:?}", clean.violations);
    assert_eq!(clean.checks, Invariant::iter().count(), "every invariant is checked");

    let mut report = Vec::new();
    for invariant in Invariant::iter() {
        let mut world = world.clone();
        let mut case = db.begin().await.unwrap();
        let mention = plant(invariant, &mut case, &mut world).await;
        let findings = run(&mut case, &world).await;
        case.rollback().await.unwrap();
        assert_eq!(
            findings.broken(),
            vec![invariant],
            "planted {invariant:?}, the checker reported {:#?}",
            findings.violations
        );
        let text = findings.violations[0].to_string();
        assert!(text.contains(&mention), "{invariant:?}: {text:?} does not mention {mention:?}");
        report.push(format!("{invariant:?}: {text}"));
    }
    println!("planted, one at a time, and reported:\n  {}", report.join("\n  "));
}
