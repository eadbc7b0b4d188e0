//! The engine baseline: a workflow of the same shape as an order (five steps, the same kind of
//! activity, started the same way) whose activities do nothing and touch no database. Its rate
//! on the same server is the most the engine gives; OrderFlow's rate is reported against it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use temporalio_client::{
    Client, ClientOptions, Connection, ConnectionOptions, Url, WorkflowStartOptions,
};
use temporalio_macros::{activities, workflow, workflow_methods};
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use temporalio_sdk::runtime::worker_tuner::{FixedSizeSlotSupplier, TunerHolder};
use temporalio_sdk::{
    ActivityOptions, LocalActivityOptions, Runtime, Worker, WorkerOptions, WorkflowContext,
    WorkflowResult,
};
use tokio::sync::oneshot;

/// How the baseline runs its steps; set to what OrderFlow does.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Shape {
    pub local_activities: bool,
    pub eager_start: bool,
}

/// Step 4 of 5 ("confirm") reports here, as an order is complete once confirmed.
type Completions = Arc<Mutex<HashMap<String, oneshot::Sender<Instant>>>>;

pub struct NoopSteps {
    completions: Completions,
}

#[activities]
impl NoopSteps {
    #[activity(name = "baseline_step")]
    pub async fn step(
        self: Arc<Self>,
        ctx: ActivityContext,
        step: u32,
    ) -> Result<u32, ActivityError> {
        if step == 3
            && let Some(id) = ctx.info().workflow_id.as_deref()
            && let Some(done) = self.completions.lock().expect("lock").remove(id)
        {
            let _ = done.send(Instant::now());
        }
        Ok(step)
    }
}

#[workflow]
#[derive(Default)]
pub struct BaselineWorkflow;

#[workflow_methods]
impl BaselineWorkflow {
    #[run(name = "BaselineWorkflow")]
    pub async fn run(ctx: &mut WorkflowContext<Self>, local: bool) -> WorkflowResult<()> {
        // The step timeout of OrderFlow's own steps.
        let timeout = orderflow_workflow::STEP_TIMEOUT;
        for step in 0..5u32 {
            if local {
                let options =
                    LocalActivityOptions::builder().start_to_close_timeout(timeout).build();
                ctx.execute_local_activity(NoopSteps::step, step, options).await?;
            } else {
                ctx.execute_activity(
                    NoopSteps::step,
                    step,
                    ActivityOptions::start_to_close_timeout(timeout),
                )
                .await?;
            }
        }
        Ok(())
    }
}

/// A worker for the baseline in this process (on a thread of its own: the SDK's worker future
/// is not `Send`), and a client registered with it, so that eager start can work.
pub struct BaselineHost {
    pub client: Client,
    completions: Completions,
    task_queue: String,
    shape: Shape,
    stop: Option<oneshot::Sender<()>>,
}

impl BaselineHost {
    pub async fn start(address: &str, task_queue: &str, shape: Shape) -> anyhow::Result<Self> {
        let completions: Completions = Arc::default();
        let (ready_tx, ready_rx) = oneshot::channel::<anyhow::Result<Client>>();
        let (stop, stopped) = oneshot::channel::<()>();
        let (address, queue, steps) =
            (address.to_owned(), task_queue.to_owned(), completions.clone());
        std::thread::spawn(move || {
            let runtime =
                tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build();
            let Ok(runtime) = runtime else { return };
            runtime.block_on(async move {
                let setup = async {
                    let url = Url::parse(&format!("http://{address}"))?;
                    let connection =
                        Connection::connect(ConnectionOptions::new(url).build()).await?;
                    let client = Client::new(connection, ClientOptions::new("default").build())?;
                    let sdk = Runtime::from_current_tokio(Default::default())?;
                    // The slots `orderflow serve` has by default (WORKER_*_SLOTS), so that
                    // eager start succeeds as often for both.
                    let tuner = TunerHolder::builder()
                        .workflow_task_slot_supplier(FixedSizeSlotSupplier::new(1000))
                        .activity_task_slot_supplier(FixedSizeSlotSupplier::new(100))
                        .local_activity_task_slot_supplier(FixedSizeSlotSupplier::new(100))
                        .nexus_task_slot_supplier(FixedSizeSlotSupplier::new(1))
                        .build();
                    let options = WorkerOptions::new(&queue)
                        .max_cached_workflows(1000)
                        .tuner(tuner)
                        .register_workflow::<BaselineWorkflow>()?
                        .register_activities(NoopSteps { completions: steps })
                        .build();
                    let worker = Worker::new(&sdk, client.clone(), options)?;
                    anyhow::Ok((client, worker, sdk))
                };
                match setup.await {
                    Ok((client, mut worker, _sdk)) => {
                        let _ = ready_tx.send(Ok(client));
                        let shutdown = worker.shutdown_handle();
                        tokio::spawn(async move {
                            let _ = stopped.await;
                            shutdown();
                        });
                        let _ = worker.run().await;
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                    }
                }
            });
        });
        let client = ready_rx.await??;
        Ok(Self { client, completions, task_queue: task_queue.to_owned(), shape, stop: Some(stop) })
    }

    /// Starts one baseline workflow; resolves when its "confirm" step has run.
    pub async fn run_one(&self, id: String) -> anyhow::Result<()> {
        let (done_tx, done_rx) = oneshot::channel();
        self.completions.lock().expect("lock").insert(id.clone(), done_tx);
        let options = WorkflowStartOptions::new(self.task_queue.clone(), id)
            .enable_eager_workflow_start(self.shape.eager_start)
            .build();
        self.client
            .start_workflow(BaselineWorkflow::run, self.shape.local_activities, options)
            .await?;
        done_rx.await?;
        Ok(())
    }
}

impl Drop for BaselineHost {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
