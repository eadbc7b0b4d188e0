//! Create the order: its row and its lines, status `pending`. Nothing to compensate: the roll
//! back closes the order (see `close_order`).

use super::StepDeps;
use super::run::report;
use crate::step::{Ctx, Halt, failure, run_step};
use crate::step_options::StepPolicy;
use crate::{InDatabase, StepReport};
use anyhow::Context;
use orderflow_domain::{NewOrder, Step};
use std::sync::Arc;
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

/// The workflow's call.
pub async fn create(ctx: &Ctx, order: NewOrder) -> Result<(), Halt> {
    let policy = StepPolicy::until_done();
    run_step(ctx, Step::CreateOrder, CreateOrder::create_order, order, policy)
        .await
        .map(drop)
        .map_err(failure)
}

pub struct CreateOrder(pub Arc<StepDeps>);

#[activities]
impl CreateOrder {
    /// Writes the order row and its lines (status `pending`). Idempotent.
    #[activity(name = "create_order")]
    pub async fn create_order(
        self: Arc<Self>,
        ctx: ActivityContext,
        order: InDatabase<NewOrder>,
    ) -> Result<StepReport, ActivityError> {
        let deps = &self.0;
        let order = deps.admit(Step::CreateOrder.as_str(), order)?;
        let trace = current_trace_id();
        deps.run(&ctx, Step::CreateOrder.as_str(), order.order_id, async {
            if deps
                .store
                .insert_order(&order, trace.as_deref())
                .await
                .context("writing the order")?
            {
                metrics::counter!("orderflow_orders_started_total").increment(1);
            }
            Ok(report(&ctx))
        })
        .await
    }
}

pub mod markers {
    pub use super::create_order::*;
}

/// The trace this step runs in (the SDK's OpenTelemetry plugin makes the order's trace current
/// around each step), when traces are exported and this one is recorded: kept with the order,
/// so that the dashboard links to it.
fn current_trace_id() -> Option<String> {
    use opentelemetry::trace::TraceContextExt as _;
    let context = opentelemetry::Context::current();
    let span = context.span();
    let span_context = span.span_context();
    // A trace the caller asked not to record is never exported: nothing to link to.
    let recorded = span_context.is_valid() && span_context.is_sampled();
    recorded.then(|| span_context.trace_id().to_string())
}
