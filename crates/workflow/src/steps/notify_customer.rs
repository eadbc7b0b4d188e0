//! Tell the customer how the order ended, once. A failure here does not change the outcome;
//! it shows as `customer_notified: false`.

use super::StepDeps;
use super::run::report;
use crate::step::{Ctx, run_step};
use crate::step_options::StepPolicy;
use crate::{InDatabase, StepReport};
use anyhow::Context;
use orderflow_domain::{CustomerId, NotificationKind, OrderId, Step};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationRequest {
    pub order_id: OrderId,
    pub customer_id: CustomerId,
    pub kind: NotificationKind,
    pub message: String,
}

/// The workflow's call: the message that fits how the order ended.
pub async fn notify(ctx: &Ctx) {
    let request = ctx.state(|w| NotificationRequest {
        order_id: w.order.order_id,
        customer_id: w.order.customer_id.clone(),
        kind: w.state.notification(),
        message: w.state.customer_message(),
    });
    let policy = StepPolicy::notification();
    let notified =
        run_step(ctx, Step::NotifyCustomer, NotifyCustomer::notify_customer, request, policy)
            .await
            .is_ok();
    ctx.state_mut(|w| w.state.customer_notified = notified);
}

pub struct NotifyCustomer(pub Arc<StepDeps>);

#[activities]
impl NotifyCustomer {
    /// Tells the customer how the order ended. Never sends the same message twice.
    #[activity(name = "notify_customer")]
    pub async fn notify_customer(
        self: Arc<Self>,
        ctx: ActivityContext,
        request: InDatabase<NotificationRequest>,
    ) -> Result<StepReport, ActivityError> {
        let deps = &self.0;
        let request = deps.admit(Step::NotifyCustomer.as_str(), request)?;
        let order = request.order_id;
        deps.run(&ctx, Step::NotifyCustomer.as_str(), order, async {
            let sent_before = deps.store.notification_sent(order, request.kind).await;
            if sent_before.context("reading past notifications")? {
                return Ok(report(&ctx));
            }
            let dedup_key = format!("{order}:{}", request.kind.as_str());
            let sent = deps.notifier.send(&request.customer_id, &dedup_key, &request.message).await;
            let error = sent.as_ref().err().map(ToString::to_string);
            let channel = deps.notifier.channel();
            deps.store
                .record_notification(
                    order,
                    request.kind,
                    channel,
                    &request.message,
                    error.as_deref(),
                )
                .await
                .context("recording the notification")?;
            sent.context("sending the notification")?;
            Ok(report(&ctx))
        })
        .await
    }
}

pub mod markers {
    pub use super::notify_customer::*;
}
