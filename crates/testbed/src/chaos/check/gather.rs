//! Collects the evidence of a chaos run from its cluster: the provider's ledger over its API,
//! and from Temporal the workflows still open and the histories that replay.

use super::{Evidence, Findings, LedgerIntent, TemporalEvidence};
use crate::chaos::load::OrderAttempt;
use crate::cluster::Cluster;
use anyhow::Context;
use futures::StreamExt;
use orderflow_workflow::OrderWorkflow;
use temporalio_client::{
    Client, WorkflowCountOptions, WorkflowFetchHistoryOptions, WorkflowHistory, WorkflowListOptions,
};
use temporalio_sdk::workflow_replayer::{WorkflowReplayer, WorkflowReplayerOptions};

/// Checks every invariant of the run.
pub async fn gather(
    cluster: &Cluster,
    temporal: &Client,
    attempts: &[OrderAttempt],
    replay_sample: usize,
) -> anyhow::Result<Findings> {
    let provider = cluster.provider_url.as_deref().context("the chaos cluster runs a provider")?;
    let ledger = ledger(provider).await.context("reading the provider's ledger")?;
    let temporal = temporal_evidence(cluster, temporal, replay_sample).await?;
    let evidence = Evidence {
        attempts,
        initial_stock: &cluster.initial_stock,
        ledger: &ledger,
        temporal: &temporal,
    };
    let mut db = cluster.store.pool().acquire().await?;
    super::check(&mut db, &evidence).await
}

/// Every payment intent in the provider's ledger, oldest first, a page at a time. An intent
/// that does not read as one is an error, not a pass.
pub async fn ledger(provider: &str) -> anyhow::Result<Vec<LedgerIntent>> {
    #[derive(serde::Deserialize)]
    struct Page {
        data: Vec<LedgerIntent>,
    }
    let http = reqwest::Client::new();
    let mut intents: Vec<LedgerIntent> = Vec::new();
    loop {
        let mut url = format!("{provider}/v1/payment_intents?limit=1000");
        if let Some(last) = intents.last() {
            url.push_str(&format!("&after={}", last.id));
        }
        let page: Page = http.get(url).send().await?.error_for_status()?.json().await?;
        if page.data.is_empty() {
            return Ok(intents);
        }
        intents.extend(page.data);
    }
}

/// No workflow left open, and no non-determinism: none reported by any worker, and sampled
/// histories replay with this code.
async fn temporal_evidence(
    cluster: &Cluster,
    temporal: &Client,
    replay_sample: usize,
) -> anyhow::Result<TemporalEvidence> {
    let running = temporal
        .count_workflows(
            format!("TaskQueue = '{}' AND ExecutionStatus = 'Running'", cluster.task_queue),
            WorkflowCountOptions::default(),
        )
        .await?
        .count();
    let mut nondeterminism = Vec::new();
    for log in cluster.worker_logs() {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let hits = text
            .lines()
            .filter(|l| l.contains("TMPRL1100") || l.contains("Nondeterminism"))
            .count();
        if hits > 0 {
            nondeterminism.push(format!("{}: {hits} line(s)", log.display()));
        }
    }
    let (replayed, failures) = replay(temporal, &cluster.task_queue, replay_sample).await?;
    nondeterminism.extend(failures);
    Ok(TemporalEvidence { running, nondeterminism, replayed })
}

/// Replays up to `limit` closed workflows of the run with the current workflow code.
async fn replay(
    temporal: &Client,
    task_queue: &str,
    limit: usize,
) -> anyhow::Result<(usize, Vec<String>)> {
    let options = WorkflowReplayerOptions::new().register_workflow::<OrderWorkflow>()?.build();
    let replayer = WorkflowReplayer::new(options)?;
    let mut ids = Vec::new();
    let mut list = temporal.list_workflows(
        format!("TaskQueue = '{task_queue}'"),
        WorkflowListOptions::builder().limit(limit).build(),
    );
    while let Some(execution) = list.next().await {
        ids.push(execution?.id().to_owned());
    }
    let mut failures = Vec::new();
    for id in &ids {
        let handle = temporal.get_workflow_handle::<OrderWorkflow>(id.clone());
        let json = handle.fetch_history(WorkflowFetchHistoryOptions::default()).to_json().await?;
        if let Err(e) = replayer.replay_workflow(WorkflowHistory::from_json(&json)?).await {
            failures.push(format!("{id}: {e}"));
        }
    }
    Ok((ids.len(), failures))
}
