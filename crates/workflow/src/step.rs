//! The workflow's side of a step: run its activity, record it in the order's state object,
//! and read its failure (a business outcome, a technical failure, a foreign worker).

use crate::contracts::{Attempted, FailureType, InDatabase};
use crate::order_workflow::OrderWorkflow;
use crate::step_options::StepPolicy;
use chrono::{DateTime, Utc};
use orderflow_domain::{ErrorCode, Step, TEMPORARY_PROBLEM};
use std::time::SystemTime;
use temporalio_common::ActivityDefinition;
use temporalio_common::protos::temporal::api::failure::v1::{Failure, failure::FailureInfo};
use temporalio_sdk::{ActivityExecutionError, WorkflowContext};

pub type Ctx = WorkflowContext<OrderWorkflow>;

/// Why the forward path stopped before the order completed.
pub enum Halt {
    Failed { code: ErrorCode, message: String },
    Cancelled,
}

/// Runs one activity as one step of the order, recording its start, end, retries and error.
pub async fn run_step<A, I>(
    ctx: &Ctx,
    step: Step,
    activity: A,
    input: I,
    policy: StepPolicy,
) -> Result<A::Output, ActivityExecutionError>
where
    A: ActivityDefinition<Input = InDatabase<I>>,
    A::Output: Attempted,
{
    let max_attempts = policy.max_attempts();
    let started = clock(ctx.workflow_time());
    ctx.state_mut(|w| w.state.begin(step, started));
    let input = InDatabase { database: ctx.state(|w| w.database), input };
    let result = ctx.execute_local_activity(activity, input, policy.local()).await;
    if let Err(e) = &result {
        refuse_if_foreign(e);
    }
    let ended = clock(ctx.workflow_time());
    let (attempts, error) = match &result {
        Ok(output) => (output.attempt(), None),
        Err(e) => (failed_attempts(e, max_attempts), Some(customer_text(e))),
    };
    ctx.state_mut(|w| w.state.end_step(ended, attempts, error));
    result
}

/// A failed step as an order failure: business errors keep their code, anything else is an
/// internal error.
pub fn failure(e: ActivityExecutionError) -> Halt {
    match step_failure(&e) {
        // Confirmation lost the race against a cancellation recorded in the database.
        Some(FailureType::OrderCancelled) => Halt::Cancelled,
        Some(FailureType::Order(code)) => halt_with(code, &e),
        _ => halt_with(ErrorCode::InternalError, &e),
    }
}

/// The order fails with `code`; the customer reads the business reason, or for a technical
/// failure a generic sentence (the details are in the activity's log and the operator view).
pub fn halt_with(code: ErrorCode, e: &ActivityExecutionError) -> Halt {
    let message = if code.is_business() { message(e) } else { code.customer_message().to_owned() };
    Halt::Failed { code, message }
}

/// A step's error as the customer may read it (in the state object's step history).
fn customer_text(e: &ActivityExecutionError) -> String {
    let for_the_customer = step_failure(e).is_some_and(|t| t.is_for_the_customer());
    if for_the_customer { message(e) } else { TEMPORARY_PROBLEM.to_owned() }
}

/// A worker connected to another deployment's database refused the step, touching nothing.
/// Failing this workflow task (a panic in workflow code does that) records nothing of it, and
/// Temporal hands the task to another worker: eventually one of the order's own deployment.
pub fn refuse_if_foreign(e: &ActivityExecutionError) {
    if step_failure(e) == Some(FailureType::ForeignDatabase) {
        panic!("{}", message(e));
    }
}

/// The step's own error: a local activity's failure is the error itself (a regular
/// activity's would wrap it as its cause).
fn root_failure(e: &ActivityExecutionError) -> Option<&Failure> {
    e.cause().map(|cause| cause.failure()).or_else(|| e.failure())
}

pub fn step_failure(e: &ActivityExecutionError) -> Option<FailureType> {
    match &root_failure(e)?.failure_info {
        Some(FailureInfo::ApplicationFailureInfo(info)) => FailureType::parse(&info.r#type),
        _ => None,
    }
}

/// How many attempts a failed step made: the number a final failure reports in its details
/// (see `steps::run`), else the policy's maximum when its retries ran out (a local
/// activity's retryable error only reaches the workflow once they are spent), else one.
fn failed_attempts(e: &ActivityExecutionError, max_attempts: u32) -> u32 {
    let Some(FailureInfo::ApplicationFailureInfo(info)) =
        root_failure(e).and_then(|f| f.failure_info.as_ref())
    else {
        return 1;
    };
    let reported = info.details.as_ref().and_then(|d| d.payloads.first());
    match reported.and_then(|p| serde_json::from_slice::<u32>(&p.data).ok()) {
        Some(attempts) => attempts,
        None if !info.non_retryable => max_attempts,
        None => 1,
    }
}

/// The most specific message: the activity's own error rather than "activity task failed".
fn message(e: &ActivityExecutionError) -> String {
    root_failure(e).map_or_else(|| e.to_string(), |f| f.message.clone())
}

pub fn clock(time: Option<SystemTime>) -> DateTime<Utc> {
    time.map(DateTime::<Utc>::from).unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}
