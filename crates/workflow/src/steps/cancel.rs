//! The customer's cancellation (the workflow's `cancel` update): recorded in the database,
//! where it races the start of confirmation under the order's row lock, and whichever commits
//! first wins. Not a step of the order's history: an answer to a request.

use super::StepDeps;
use crate::InDatabase;
use anyhow::Context;
use orderflow_domain::{OrderId, OrderStatus};
use orderflow_store::CancelOutcome;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

/// The name the cancellation activity is known by in logs and metrics (its activity type is
/// the same word).
pub const CANCELLATION: &str = "request_cancellation";

/// The database's answer to a cancellation request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CancelDecision {
    Accepted,
    /// The order had already ended, with this status.
    TooLate(OrderStatus),
    /// Its confirmation had begun: the payment is being captured (the point of no return).
    Confirming,
}

/// The answer to an accepted cancellation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelAccepted {
    /// The status at the moment of acceptance; the order ends `cancelled` shortly after.
    pub status: OrderStatus,
}

pub struct Cancel(pub Arc<StepDeps>);

#[activities]
impl Cancel {
    /// Records a customer's cancellation in the database, where it races confirmation under
    /// the order's row lock: the answer is final.
    #[activity(name = "request_cancellation")]
    pub async fn request_cancellation(
        self: Arc<Self>,
        ctx: ActivityContext,
        order: InDatabase<OrderId>,
    ) -> Result<CancelDecision, ActivityError> {
        let deps = &self.0;
        let order = deps.admit(CANCELLATION, order)?;
        deps.run(&ctx, CANCELLATION, order, async {
            let outcome = deps.store.request_cancellation(order).await;
            Ok(match outcome.context("recording the cancellation")? {
                CancelOutcome::Recorded => CancelDecision::Accepted,
                CancelOutcome::Ended(status) => CancelDecision::TooLate(status),
                CancelOutcome::Confirming => CancelDecision::Confirming,
            })
        })
        .await
    }
}

pub mod markers {
    pub use super::cancel::*;
}
