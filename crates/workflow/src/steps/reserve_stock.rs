//! Reserve stock: hold every line's stock for the order, all or nothing, until its hold
//! expires. Compensation: release what is held (`release_stock`).

use super::StepDeps;
use super::close_order::OrderEnd;
use super::run::{business, report};
use crate::saga::Undone;
use crate::step::{Ctx, Halt, failure, run_step};
use crate::step_options::StepPolicy;
use crate::{InDatabase, StepReport};
use anyhow::Context;
use orderflow_domain::{ErrorCode, OrderId, Step};
use std::sync::Arc;
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

/// The workflow's call.
pub async fn reserve(ctx: &Ctx, order: OrderId) -> Result<(), Halt> {
    let policy = StepPolicy::until_done();
    run_step(ctx, Step::ReserveStock, ReserveStock::reserve_stock, order, policy)
        .await
        .map(drop)
        .map_err(failure)
}

/// The compensation: releases the order's held stock (none held: nothing to do). Retried
/// until it succeeds; an error is a bug already recorded in the step history.
pub fn release(ctx: &Ctx, end: OrderEnd) -> Undone<'_> {
    Box::pin(async move {
        let policy = StepPolicy::until_done();
        let _ = run_step(ctx, Step::ReleaseStock, ReserveStock::release_stock, end, policy).await;
    })
}

pub struct ReserveStock(pub Arc<StepDeps>);

#[activities]
impl ReserveStock {
    /// Holds stock for every line, all or nothing. Fails with `insufficient_stock`.
    #[activity(name = "reserve_stock")]
    pub async fn reserve_stock(
        self: Arc<Self>,
        ctx: ActivityContext,
        order: InDatabase<OrderId>,
    ) -> Result<StepReport, ActivityError> {
        let deps = &self.0;
        let order = deps.admit(Step::ReserveStock.as_str(), order)?;
        deps.run(&ctx, Step::ReserveStock.as_str(), order, async {
            // `validating` is worth a write only while there is a stock check to watch; without
            // one, the order goes from `pending` to `payment` in the reservation's transaction.
            if !deps.inventory_delay.is_zero() {
                deps.store.mark_validating(order).await.context("marking the order validating")?;
                tokio::time::sleep(deps.inventory_delay).await;
            }
            let reserved = deps.store.reserve_stock(order, Some(deps.payment_hold)).await;
            match reserved.context("reserving stock")? {
                Ok(()) => Ok(report(&ctx)),
                Err(shortage) => {
                    metrics::counter!("orderflow_reservation_conflicts_total").increment(1);
                    Err(business(ErrorCode::InsufficientStock, shortage.to_string()))
                }
            }
        })
        .await
    }

    /// Compensation: releases held stock and ends the order failed or cancelled.
    #[activity(name = "release_stock")]
    pub async fn release_stock(
        self: Arc<Self>,
        ctx: ActivityContext,
        request: InDatabase<OrderEnd>,
    ) -> Result<StepReport, ActivityError> {
        let deps = &self.0;
        let request = deps.admit(Step::ReleaseStock.as_str(), request)?;
        deps.run(&ctx, Step::ReleaseStock.as_str(), request.order_id, async {
            deps.store
                .release_stock(request.order_id, &request.ending)
                .await
                .context("releasing stock")?;
            Ok(report(&ctx))
        })
        .await
    }
}

pub mod markers {
    pub use super::reserve_stock::*;
}
