//! The Temporal worker: the order workflow and its steps, registered on a task queue with
//! this process's slots and release, kept fresh by replacing it every so many steps.

use crate::Dependencies;
use crate::config::{PaymentConfig, SimulationConfig, WorkerConfig};
use crate::shutdown::Shutdown;
use futures::FutureExt;
use futures::stream::{FuturesUnordered, StreamExt};
use orderflow_providers::payment_provider::PaymentProvider;
use orderflow_providers::{PaymentGateway, SimulatedNotifier, SimulatedPaymentGateway};
use orderflow_workflow::{OrderWorkflow, StepDeps, StuckSteps};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use temporalio_common::worker::{VersioningBehavior, WorkerDeploymentOptions};
use temporalio_sdk::runtime::worker_tuner::{FixedSizeSlotSupplier, TunerHolder};
use temporalio_sdk::{Runtime, Worker, WorkerOptions};

/// Registers the order workflow a worker runs: [`this_release`] in every process; tests of
/// releases register another version's.
pub type RegisterWorkflow = fn(&mut WorkerOptions) -> anyhow::Result<()>;

/// This build's order workflow.
pub fn this_release(options: &mut WorkerOptions) -> anyhow::Result<()> {
    options.register_workflow::<OrderWorkflow>()?;
    Ok(())
}

/// What a process's order worker is made of; [`OrderWorker::run`] builds it, and builds it
/// again each time it is replaced.
#[derive(Clone)]
pub struct OrderWorker {
    pub deps: Dependencies,
    pub task_queue: String,
    pub config: WorkerConfig,
    pub simulation: SimulationConfig,
    pub payments: PaymentConfig,
    pub register: RegisterWorkflow,
}

impl OrderWorker {
    /// A Temporal worker for the order workflow and its steps, and the count of the steps it
    /// has run.
    fn build(&self, runtime: &Runtime) -> anyhow::Result<(Worker, Arc<AtomicU64>)> {
        let (steps, steps_run) =
            step_deps(&self.deps, &self.config, &self.simulation, &self.payments)?;
        let mut options = worker_options(&self.task_queue, &self.config);
        (self.register)(&mut options)?;
        orderflow_workflow::register(&mut options, Arc::new(steps));
        Ok((Worker::new(runtime, self.deps.temporal.clone(), options)?, steps_run))
    }

    /// Runs until shutdown is requested, then lets the worker finish what it runs (the
    /// caller bounds that with the grace period). Not `Send`: the SDK's worker is not.
    pub async fn run(&self, shutdown: &Shutdown) -> anyhow::Result<()> {
        let runtime = crate::temporal::sdk_runtime()?;
        tracing::info!(task_queue = %self.task_queue, database = %self.deps.database, "worker started");
        run_recycled(|| self.build(&runtime), self.config.recycle_after_steps, shutdown).await
    }
}

/// What the order's steps need, and the count of the steps they have run.
fn step_deps(
    deps: &Dependencies,
    worker: &WorkerConfig,
    simulation: &SimulationConfig,
    payments: &PaymentConfig,
) -> anyhow::Result<(StepDeps, Arc<AtomicU64>)> {
    let steps_run = Arc::new(AtomicU64::new(0));
    // Primed once the recorder is installed (before it, a counter goes nowhere).
    orderflow_api::metrics::recorder();
    orderflow_workflow::prime_metrics();
    let steps = StepDeps {
        steps_run: steps_run.clone(),
        store: deps.store.clone(),
        database: deps.database,
        payments: payment_gateway(payments, simulation)?,
        payment_hold: payments.confirmation_timeout,
        notifier: Arc::new(SimulatedNotifier::new(
            simulation.notification_delay,
            simulation.notification_failure_rate,
        )),
        inventory_delay: simulation.inventory_delay,
        stuck: StuckSteps::new(deps.store.clone(), worker.stuck_after_attempts),
    };
    Ok((steps, steps_run))
}

/// A worker's options before its workflow and activities are registered: its task queue,
/// slots, cache, and worker deployment version.
fn worker_options(task_queue: &str, worker: &WorkerConfig) -> WorkerOptions {
    let slots = |n: u16| FixedSizeSlotSupplier::new(usize::from(n));
    let tuner = TunerHolder::builder()
        .workflow_task_slot_supplier(slots(worker.workflow_slots))
        .activity_task_slot_supplier(slots(worker.activity_slots))
        .local_activity_task_slot_supplier(slots(worker.activity_slots))
        .nexus_task_slot_supplier(slots(1))
        .build();
    let mut options = WorkerOptions::new(task_queue)
        .max_cached_workflows(worker.max_cached_workflows)
        .tuner(tuner)
        .build();
    // Pinned: an order runs to its end on the build that started it, so a release may change
    // the workflow freely (no patching, nothing recorded per order); the previous build's
    // workers stay until its orders have drained (docs/operations.md, "Releasing a new version").
    if let Some(version) = worker.deployment_version() {
        options.deployment_options = WorkerDeploymentOptions::new(version)
            .use_worker_versioning(true)
            .default_versioning_behavior(VersioningBehavior::Pinned)
            .build();
    }
    options
}

/// How long a call to the payment provider may take before it counts as failed (and is
/// retried: every call is idempotent). Well inside a step's timeout.
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(5);

/// The payment provider at `PAYMENT_PROVIDER_URL`, else the in-process simulation.
pub(crate) fn payment_gateway(
    payments: &PaymentConfig,
    simulation: &SimulationConfig,
) -> anyhow::Result<Arc<dyn PaymentGateway>> {
    Ok(match &payments.provider_url {
        Some(url) => Arc::new(
            PaymentProvider::new(url, PROVIDER_TIMEOUT)
                .map_err(|e| anyhow::anyhow!("PAYMENT_PROVIDER_URL: {e}"))?,
        ),
        None => Arc::new(SimulatedPaymentGateway::new(
            simulation.decline.above,
            simulation.payment_delay,
            simulation.payment_transient_failure_rate,
        )),
    })
}

/// Runs the worker `build` builds until shutdown is requested.
///
/// After `recycle_after_steps` steps the worker is replaced by a fresh one: temporalio-sdk
/// 1.1.1 keeps a cancellation token for every activity a worker has run, local activities
/// included, for as long as the worker lives (`ActivityHalf::task_tokens_to_cancels` is never
/// pruned): about 200 bytes a step, 1 KB an order, which grew the process by 37 MiB in a
/// 30-minute soak (docs/performance.md, "Soak"). The old worker is told to stop first, which also
/// takes it off the client's list for eager workflow start, so the new one can register on the
/// same client and poll at once while the old one finishes its tasks in flight.
async fn run_recycled(
    build: impl Fn() -> anyhow::Result<(Worker, Arc<AtomicU64>)>,
    recycle_after_steps: u64,
    shutdown: &Shutdown,
) -> anyhow::Result<()> {
    let mut draining = FuturesUnordered::new();
    loop {
        let (mut worker, steps_run) = build()?;
        let stop = worker.shutdown_handle();
        let mut run = async move { worker.run().await.map_err(anyhow::Error::from) }.boxed_local();
        let recycle = async {
            while steps_run.load(Ordering::Relaxed) < recycle_after_steps {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        };
        tokio::pin!(recycle);
        let next = loop {
            tokio::select! {
                // Ended without being asked: an error, or nothing more to run.
                result = &mut run => {
                    result?;
                    break Next::Finish;
                }
                Some(result) = draining.next() => result?,
                () = &mut recycle => break Next::Replace,
                () = shutdown.requested() => break Next::Stop,
            }
        };
        match next {
            Next::Replace => {
                tracing::info!(
                    steps = recycle_after_steps,
                    "replacing the worker with a fresh one"
                );
                stop();
                draining.push(run);
                continue;
            }
            Next::Stop => {
                stop();
                draining.push(run);
            }
            Next::Finish => {}
        }
        // Every worker still finishing its tasks, together.
        while let Some(result) = draining.next().await {
            result?;
        }
        return Ok(());
    }
}

/// What `run_recycled` does once its current worker stops running or is due for replacement.
enum Next {
    Replace,
    Stop,
    Finish,
}
