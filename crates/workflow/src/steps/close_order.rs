//! Close the order, the first thing a roll back does: record that it ends failed or cancelled.
//! From then on no step can hold stock for it or capture a payment for it, even one still
//! running on a worker that lost track of it (see `orderflow_store` for the fences); and the
//! database says how the order really ends.

use super::StepDeps;
use super::run::attempt;
use crate::step::{Ctx, run_step};
use crate::step_options::StepPolicy;
use crate::{Attempted, InDatabase};
use anyhow::Context;
use orderflow_domain::{OrderEnding, OrderId, OrderStatus, Step};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

/// How an order that will not complete ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderEnd {
    pub order_id: OrderId,
    pub ending: OrderEnding,
}

/// How a closed order actually ended: `cancelled` if the customer's cancellation was recorded
/// first, or even `completed` if it had been confirmed by a step the workflow lost track of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloseReport {
    pub status: OrderStatus,
    pub attempt: u32,
}

impl Attempted for CloseReport {
    fn attempt(&self) -> u32 {
        self.attempt
    }
}

/// The workflow's call: how the order really ends, `None` if the step failed (a bug, already
/// recorded in the step history: the compensations must still run).
pub async fn close(ctx: &Ctx, end: OrderEnd) -> Option<OrderStatus> {
    let policy = StepPolicy::until_done();
    let closed = run_step(ctx, Step::CloseOrder, CloseOrder::close_order, end, policy).await;
    closed.ok().map(|report| report.status)
}

pub struct CloseOrder(pub Arc<StepDeps>);

#[activities]
impl CloseOrder {
    /// Records that the order ends failed or cancelled, before its compensations.
    #[activity(name = "close_order")]
    pub async fn close_order(
        self: Arc<Self>,
        ctx: ActivityContext,
        request: InDatabase<OrderEnd>,
    ) -> Result<CloseReport, ActivityError> {
        let deps = &self.0;
        let request = deps.admit(Step::CloseOrder.as_str(), request)?;
        deps.run(&ctx, Step::CloseOrder.as_str(), request.order_id, async {
            let closing = deps
                .store
                .close_order(request.order_id, &request.ending)
                .await
                .context("closing the order")?;
            if closing.now {
                match closing.error_code {
                    Some(code) => metrics::counter!(
                        "orderflow_orders_failed_total", "error_code" => code.as_str()
                    )
                    .increment(1),
                    None => metrics::counter!("orderflow_orders_cancelled_total").increment(1),
                }
            }
            Ok(CloseReport { status: closing.status, attempt: attempt(&ctx) })
        })
        .await
    }
}

pub mod markers {
    pub use super::close_order::*;
}
