//! How every step's activity runs: refused if its order belongs to another database, in a span
//! that names the order, timed, and its error turned into the activity's. A step fails either
//! finally ([`StepError::Final`]: a business outcome, decided, not retried) or for now
//! ([`StepError::Retry`]: anything else, with its context chain, retried with backoff). Only the
//! second kind is logged, with the order's ids, and watched for steps that keep failing
//! ([`super::StuckSteps`]).

use super::StepDeps;
use crate::{FailureType, InDatabase, StepReport};
use orderflow_domain::{ErrorCode, OrderId};
use std::future::Future;
use temporalio_sdk::ApplicationFailure;
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use tracing::Instrument;

/// How a step failed.
pub enum StepError {
    /// Decided: a business outcome (typed with its error code for the workflow) or a refusal.
    Final(FailureType, String),
    /// Anything else: retried with backoff.
    Retry(anyhow::Error),
}

/// `?` on any error (sqlx, a provider's, anyhow with context) makes it a retryable failure.
impl<E: Into<anyhow::Error>> From<E> for StepError {
    fn from(error: E) -> Self {
        Self::Retry(error.into())
    }
}

/// A business failure: final, typed with its error code for the workflow.
pub fn business(code: ErrorCode, message: String) -> StepError {
    StepError::Final(FailureType::Order(code), message)
}

pub fn attempt(ctx: &ActivityContext) -> u32 {
    ctx.info().attempt
}

/// The step finished, on this attempt.
pub fn report(ctx: &ActivityContext) -> StepReport {
    StepReport { attempt: attempt(ctx) }
}

impl StepDeps {
    /// The step's input, if its order belongs to this worker's database. Otherwise two
    /// deployments share a task queue: the step is refused before anything is touched, loudly,
    /// and the workflow hands the order back to Temporal (see [`InDatabase`]).
    pub fn admit<T>(&self, step: &'static str, request: InDatabase<T>) -> Result<T, ActivityError> {
        match request.database {
            Some(database) if database != self.database => {
                metrics::counter!("orderflow_foreign_orders_refused_total", "step" => step)
                    .increment(1);
                tracing::error!(
                    step,
                    order_database = %database,
                    worker_database = %self.database,
                    "refused a step of another database's order: two deployments share this \
                     Temporal task queue; give each its own TEMPORAL_TASK_QUEUE or namespace"
                );
                Err(non_retryable(
                    FailureType::ForeignDatabase,
                    format!(
                        "this worker serves database {}, the order belongs to {database}",
                        self.database
                    ),
                    None,
                ))
            }
            _ => Ok(request.input),
        }
    }

    /// Runs one step in a span that names the order (so every log line about it carries its
    /// ids), records how long it took, and turns its error into the activity's: final errors
    /// are not retried and report the attempt they ended on; the others are logged and watched
    /// for a step that keeps failing.
    pub async fn run<T>(
        &self,
        ctx: &ActivityContext,
        name: &'static str,
        order: OrderId,
        work: impl Future<Output = Result<T, StepError>>,
    ) -> Result<T, ActivityError> {
        self.steps_run.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let started = std::time::Instant::now();
        let span = tracing::info_span!("step", step = name, order_id = %order, workflow_id = %order.workflow_id());
        let result = work.instrument(span.clone()).await;
        let outcome = if result.is_ok() { "ok" } else { "error" };
        metrics::histogram!("orderflow_step_duration_seconds", "step" => name, "outcome" => outcome)
            .record(started.elapsed().as_secs_f64());
        let attempt = attempt(ctx);
        match result {
            Ok(value) => {
                self.stuck.succeeded(order, name, attempt).instrument(span).await;
                Ok(value)
            }
            Err(StepError::Final(kind, message)) => {
                Err(non_retryable(kind, message, Some(attempt)))
            }
            Err(StepError::Retry(error)) => {
                self.stuck.failed(order, name, attempt, &error).instrument(span).await;
                // The whole chain in the failure's message (Temporal UI, step history for
                // operators): "recording the capture: error returned from database: ...".
                Err(anyhow::anyhow!("{error:#}").into())
            }
        }
    }
}

/// A failure that is not retried; `attempt` goes into its details for the step's record.
fn non_retryable(
    kind: FailureType,
    message: impl Into<String>,
    attempt: Option<u32>,
) -> ActivityError {
    let failure = ApplicationFailure::builder(message.into())
        .type_name(kind.as_str().to_owned())
        .non_retryable(true);
    let failure = match attempt {
        Some(attempt) => failure.details(attempt).build(),
        None => failure.build(),
    };
    ActivityError::application(failure)
}
