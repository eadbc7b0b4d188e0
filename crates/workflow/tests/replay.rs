//! Replays recorded histories of every path of the saga (completed, each failure, each kind of
//! cancellation) against the current workflow code. A change that would break orders already
//! running — a step added, removed or reordered without versioning — fails here, offline,
//! before it reaches a worker. Histories are recorded by the end-to-end tests with
//! `ORDERFLOW_RECORD_HISTORIES=crates/workflow/tests/histories/local-activities cargo test -p orderflow --test e2e`.

use orderflow_workflow::OrderWorkflow;
use temporalio_client::WorkflowHistory;
use temporalio_sdk::workflow_replayer::{WorkflowReplayer, WorkflowReplayerOptions};

#[tokio::test]
async fn recorded_histories_replay_with_the_current_workflow() {
    // One folder per version of the workflow: histories of orders started before a change must
    // replay after it (`regular-activities`: before the `local-activity-steps` patch).
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/histories");
    let mut paths = Vec::new();
    for version in ["regular-activities", "local-activities"] {
        let found: Vec<_> = std::fs::read_dir(format!("{root}/{version}"))
            .expect("a histories folder")
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|e| e == "json"))
            .collect();
        assert!(
            found.len() >= 7,
            "expected a history per path of the saga in {version}, found {found:?}"
        );
        paths.extend(found);
    }
    paths.sort();

    let options =
        WorkflowReplayerOptions::new().register_workflow::<OrderWorkflow>().unwrap().build();
    let replayer = WorkflowReplayer::new(options).unwrap();
    for path in paths {
        let json = std::fs::read(&path).unwrap();
        let history = WorkflowHistory::from_json(&json).unwrap();
        if let Err(e) = replayer.replay_workflow(history).await {
            panic!("{} no longer replays: {e}", path.display());
        }
    }
}
