//! The invariants an order system must keep, checked once the cluster is quiet against what
//! every party recorded: the clients (what they were told), PostgreSQL (what OrderFlow
//! believes), the payment provider's ledger (where the money really is) and Temporal.
//!
//! Each invariant is one [`Invariant`]. They are written so that one broken fact breaks one
//! invariant: a planted violation of each, and nothing else, is what `tests/checker.rs` asserts
//! (an invariant that no state can break would be caught there too). Where two facts always
//! come together, they are one invariant (an order past its payment hold is an order not
//! finished; the check says which).

mod gather;
mod money;
mod orders;
mod stock;

pub use gather::{gather, ledger};

use super::load::OrderAttempt;
use orderflow_providers::payment_provider::IntentStatus;
use rust_decimal::Decimal;
use serde::Deserialize;
use sqlx::PgConnection;
use std::collections::BTreeMap;
use std::fmt;

/// One rule; [`Invariant::description`] says it as a violation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, strum::EnumIter)]
pub enum Invariant {
    // The orders' ends, from the clients' records and the orders table.
    AcknowledgedOrderUnknown,
    OrderNotFinished,
    IdempotencyKeySplit,
    CancelAcceptedNotHonoured,
    CancelRefusedButCancelled,
    CancelledWithoutRequest,
    OrderOfAnotherCustomer,
    NosyCustomerServed,
    // Stock, per product and per order.
    ProductWithoutInitialStock,
    Oversold,
    StockCreatedOrLost,
    CountersDisagreeWithReservations,
    ReservationLeftHeld,
    EndedOrderSoldStock,
    CompletedOrderNotSold,
    // Money, from the provider's ledger, and OrderFlow's books against it.
    CompletedOrderNotCaptured,
    ChargedMoreThanOnce,
    EndedOrderKeptMoney,
    AuthorizationLeftOpen,
    MoneyForUnknownOrder,
    BooksDisagreeWithLedger,
    // Temporal.
    WorkflowStillRunning,
    NonDeterminism,
}

impl Invariant {
    pub fn description(self) -> &'static str {
        use Invariant::*;
        match self {
            AcknowledgedOrderUnknown => "order acknowledged (2xx) but not in the orders table",
            OrderNotFinished => "order not in a terminal state",
            IdempotencyKeySplit => "Idempotency-Key answered with more than one order",
            CancelAcceptedNotHonoured => "cancellation accepted (202) but order not cancelled",
            CancelRefusedButCancelled => "cancellation refused (409) but order cancelled",
            CancelledWithoutRequest => "order cancelled though its customer never asked",
            OrderOfAnotherCustomer => "order recorded for another customer than its token's",
            NosyCustomerServed => "another customer's order answered other than 404",
            ProductWithoutInitialStock => "product whose initial stock the run did not record",
            Oversold => "stock oversold (available below zero)",
            StockCreatedOrLost => "stock created or lost (available + reserved + sold ≠ initial)",
            CountersDisagreeWithReservations => {
                "product's reserved/sold counters disagree with its reservations"
            }
            ReservationLeftHeld => "stock left reserved",
            EndedOrderSoldStock => "failed or cancelled order whose stock was sold",
            CompletedOrderNotSold => "completed order whose lines are not all sold",
            CompletedOrderNotCaptured => {
                "completed order with no intent captured for its total (provider's ledger)"
            }
            ChargedMoreThanOnce => "order charged more than once (provider's ledger)",
            EndedOrderKeptMoney => {
                "failed or cancelled order whose money was taken and kept (provider's ledger)"
            }
            AuthorizationLeftOpen => "authorization left open at the provider",
            MoneyForUnknownOrder => "money taken at the provider for an unknown order",
            BooksDisagreeWithLedger => "OrderFlow's payment record disagrees with the provider",
            WorkflowStillRunning => "workflow still running",
            NonDeterminism => "non-determinism",
        }
    }
}

impl fmt::Display for Invariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.description())
    }
}

/// An invariant broken, with how many cases and a few examples.
#[derive(Debug, Clone)]
pub struct Violation {
    pub invariant: Invariant,
    pub cases: usize,
    pub examples: Vec<String>,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} case(s), e.g. {}", self.invariant, self.cases, self.examples.join(", "))
    }
}

/// A payment intent as the provider's ledger shows it (`GET /v1/payment_intents`).
#[derive(Debug, Clone, Deserialize)]
pub struct LedgerIntent {
    pub id: String,
    pub order_id: String,
    pub status: IntentStatus,
    pub amount: Decimal,
    pub captured: Decimal,
    pub refunded: Decimal,
}

impl LedgerIntent {
    /// Money held on the customer's account, not yet taken.
    fn open(&self) -> bool {
        matches!(self.status, IntentStatus::Authorized | IntentStatus::RequiresAction)
    }

    /// Money taken and not given back.
    fn kept(&self) -> Decimal {
        self.captured - self.refunded
    }
}

/// What Temporal says of the run.
#[derive(Debug, Clone, Default)]
pub struct TemporalEvidence {
    /// Workflows of the run's task queue still running.
    pub running: usize,
    /// Workers' log lines reporting non-determinism, and histories that failed to replay.
    pub nondeterminism: Vec<String>,
    /// Histories replayed with the current workflow code.
    pub replayed: usize,
}

/// Everything the checker reads besides PostgreSQL.
pub struct Evidence<'a> {
    pub attempts: &'a [OrderAttempt],
    /// Units each product started with.
    pub initial_stock: &'a BTreeMap<String, i32>,
    pub ledger: &'a [LedgerIntent],
    pub temporal: &'a TemporalEvidence,
}

#[derive(Debug, Default)]
pub struct Findings {
    pub violations: Vec<Violation>,
    /// Orders in PostgreSQL by outcome, e.g. `failed/insufficient_stock`.
    pub outcomes: BTreeMap<String, usize>,
    /// Invariants checked.
    pub checks: usize,
    pub replayed: usize,
}

impl Findings {
    fn expect_none(&mut self, invariant: Invariant, offenders: Vec<String>) {
        self.checks += 1;
        if !offenders.is_empty() {
            self.violations.push(Violation {
                invariant,
                cases: offenders.len(),
                examples: offenders.into_iter().take(5).collect(),
            });
        }
    }

    /// The invariants broken, in the order they were checked.
    pub fn broken(&self) -> Vec<Invariant> {
        self.violations.iter().map(|v| v.invariant).collect()
    }
}

/// Checks every invariant against the database behind `db` and the rest of the evidence, in
/// the order of [`Invariant`].
pub async fn check(db: &mut PgConnection, evidence: &Evidence<'_>) -> anyhow::Result<Findings> {
    let mut findings = Findings { replayed: evidence.temporal.replayed, ..Findings::default() };
    let orders = orders::Orders::load(db).await?;
    findings.outcomes = orders.outcomes();
    orders::check(&mut findings, db, &orders, evidence.attempts).await?;
    stock::check(&mut findings, db, evidence.initial_stock).await?;
    money::check(&mut findings, db, evidence.ledger).await?;
    findings.expect_none(
        Invariant::WorkflowStillRunning,
        match evidence.temporal.running {
            0 => vec![],
            n => vec![format!("{n} open workflow(s)")],
        },
    );
    findings.expect_none(Invariant::NonDeterminism, evidence.temporal.nondeterminism.clone());
    Ok(findings)
}
