//! A minimal reproduction of the Temporal Rust SDK bug that took `make dev` down under a burst
//! (docs/operations.md, "Overload"), and proof that the workaround holds.
//!
//! The bug: a workflow task that waits on a local activity is heartbeated by the worker at 80%
//! of the task timeout. When the heartbeat reaches the server after the timeout (a slow network,
//! or a server or worker too busy to keep up, as in a burst), the server times the task out and
//! hands the run a new attempt while the worker still holds the old one. The SDK core's debug
//! build treats that as impossible (`dbg_panic!("Trying to send a new WFT for a run which
//! already has one!")` in temporalio-sdk-core 0.10.1, `managed_run.rs:181`) and panics, which
//! kills the worker; its release build carries on and finishes the workflow.
//!
//! Here the worker reaches the server through a proxy that delays every byte by 400 ms each way,
//! and the task timeout is 1 s: the heartbeat sent 0.8 s after the task arrived reaches the
//! server 1.6 s after it handed the task out. With the workspace's override
//! (`[profile.dev.package.temporalio-sdk-core] debug-assertions = false`) this test passes;
//! without it, this test's worker panics with the message above and the workflow never completes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use temporalio_client::{
    Client, ClientOptions, Connection, ConnectionOptions, Url, WorkflowFetchHistoryOptions,
    WorkflowGetResultOptions, WorkflowStartOptions,
};
use temporalio_macros::{activities, workflow, workflow_methods};
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use temporalio_sdk::{
    LocalActivityOptions, Runtime, Worker, WorkerOptions, WorkflowContext, WorkflowResult,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub struct SlowStep;

#[activities]
impl SlowStep {
    #[activity(name = "slow_step")]
    pub async fn run(
        self: Arc<Self>,
        _ctx: ActivityContext,
        _input: (),
    ) -> Result<(), ActivityError> {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        Ok(())
    }
}

#[workflow]
#[derive(Default)]
pub struct OverrunWorkflow;

#[workflow_methods]
impl OverrunWorkflow {
    #[run(name = "OverrunWorkflow")]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<()> {
        let options =
            LocalActivityOptions::builder().start_to_close_timeout(Duration::from_secs(10)).build();
        ctx.execute_local_activity(SlowStep::run, (), options).await?;
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workflow_task_timed_out_while_waiting_on_a_local_activity_does_not_kill_the_worker() {
    let server = format!(
        "{}:{}",
        std::env::var("TEMPORAL_HOST").unwrap_or_else(|_| "localhost".into()),
        std::env::var("TEMPORAL_PORT").unwrap_or_else(|_| "7233".into())
    );
    let latency = Arc::new(AtomicU64::new(400));
    let proxy = delay_proxy(server.clone(), latency.clone()).await;
    let task_queue = format!("sdk-overrun-{}", uuid::Uuid::new_v4().simple());

    // The worker on a thread of its own (its future is not Send), through the slow proxy.
    let (queue, (stop, stopped)) = (task_queue.clone(), tokio::sync::oneshot::channel::<()>());
    let worker = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
        runtime.block_on(async move {
            let client = connect(&proxy).await;
            let sdk = Runtime::from_current_tokio(Default::default()).unwrap();
            let options = WorkerOptions::new(&queue)
                .register_workflow::<OverrunWorkflow>()
                .unwrap()
                .register_activities(SlowStep)
                .build();
            let mut worker = Worker::new(&sdk, client, options).unwrap();
            let shutdown = worker.shutdown_handle();
            tokio::spawn(async move {
                let _ = stopped.await;
                shutdown();
            });
            worker.run().await.unwrap();
        });
    });

    let client = connect(&server).await;
    let id = format!("overrun-{}", uuid::Uuid::new_v4().simple());
    let options = WorkflowStartOptions::new(task_queue, id.clone())
        .task_timeout(Duration::from_secs(1))
        .build();
    client.start_workflow(OverrunWorkflow::run, (), options).await.unwrap();

    // Let a first attempt time out (seen in the history, through the direct connection), then
    // let the network recover so that one can finish.
    let handle = client.get_workflow_handle::<OverrunWorkflow>(id);
    let timed_out = async || {
        let history = handle.fetch_history(WorkflowFetchHistoryOptions::default()).to_json().await;
        let history = String::from_utf8(history.unwrap()).unwrap();
        history.contains("WORKFLOW_TASK_TIMED_OUT") || history.contains("WorkflowTaskTimedOut")
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !timed_out().await {
        assert!(tokio::time::Instant::now() < deadline, "no workflow task timed out in 60 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    latency.store(0, Ordering::Relaxed);
    tokio::time::timeout(
        Duration::from_secs(60),
        handle.get_result(WorkflowGetResultOptions::default()),
    )
    .await
    .expect("the workflow completes: the worker survived the overrun")
    .expect("the workflow completes");

    assert!(timed_out().await, "the scenario really timed a workflow task out");
    assert!(!worker.is_finished(), "the worker is still running");
    let _ = stop.send(());
    worker.join().expect("the worker thread did not panic");
}

async fn connect(address: &str) -> Client {
    let url = Url::parse(&format!("http://{address}")).unwrap();
    let connection = Connection::connect(ConnectionOptions::new(url).build()).await.unwrap();
    Client::new(connection, ClientOptions::new("default").build()).unwrap()
}

/// A TCP proxy in front of `target` that delays every chunk by `latency` ms in each direction
/// (without limiting throughput). Returns its address.
async fn delay_proxy(target: String, latency: Arc<AtomicU64>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = TcpStream::connect(&target).await else { continue };
            let (client_read, client_write) = client.into_split();
            let (server_read, server_write) = server.into_split();
            tokio::spawn(delayed_copy(client_read, server_write, latency.clone()));
            tokio::spawn(delayed_copy(server_read, client_write, latency.clone()));
        }
    });
    address
}

async fn delayed_copy(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    latency: Arc<AtomicU64>,
) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(tokio::time::Instant, Vec<u8>)>();
    tokio::spawn(async move {
        while let Some((due, chunk)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
    });
    let mut buffer = vec![0u8; 64 * 1024];
    while let Ok(n) = from.read(&mut buffer).await {
        if n == 0 {
            return;
        }
        let due =
            tokio::time::Instant::now() + Duration::from_millis(latency.load(Ordering::Relaxed));
        if tx.send((due, buffer[..n].to_vec())).is_err() {
            return;
        }
    }
}
