//! Replays recorded histories of every path of the saga (completed, each failure, each kind of
//! cancellation) against the current workflow code. A change that would break orders already
//! running — a step added, removed or reordered without versioning — fails here, offline,
//! before it reaches a worker. Histories are recorded by the end-to-end tests with
//! `ORDERFLOW_RECORD_HISTORIES=<dir> cargo test -p orderflow --test e2e` (v1 by the order tests,
//! v2 by `payments`), then copied into the version's folder.
//!
//! With Worker Versioning (docs/operations.md, "Releasing a new version") an order is never replayed by
//! another release's code, so these guard what remains: a worker replaying its own release's
//! orders, unversioned deployments (`make dev`), and an operator moving a stuck order to a new
//! build. Every released version keeps its folder.

use orderflow_workflow::OrderWorkflow;

/// The versions whose histories must still replay, with the number of paths each recorded.
/// Add a folder for each release that changes the workflow's commands (v2: payments that
/// await the customer; its change is driven by the recorded authorization, so v1 histories
/// replay unchanged, see docs/payments.md).
const VERSIONS: [(&str, usize); 2] = [("v1", 7), ("v2", 4)];
use temporalio_client::WorkflowHistory;
use temporalio_sdk::workflow_replayer::{WorkflowReplayer, WorkflowReplayerOptions};

#[tokio::test]
async fn recorded_histories_replay_with_the_current_workflow() {
    // One folder per released version of the workflow: histories of orders started by an
    // older version must replay with the current code for as long as such orders can run.
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/histories");
    let mut paths = Vec::new();
    for (version, paths_recorded) in VERSIONS {
        let found: Vec<_> = std::fs::read_dir(format!("{root}/{version}"))
            .expect("a histories folder")
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|e| e == "json"))
            .collect();
        assert!(
            found.len() >= paths_recorded,
            "expected a history per path of the saga in {version}, found {found:?}"
        );
        paths.extend(found);
    }
    paths.sort();
    // A folder added without its entry above would be silently skipped.
    let mut folders: Vec<String> = std::fs::read_dir(root)
        .unwrap()
        .filter_map(|e| e.ok().filter(|e| e.path().is_dir()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    folders.sort();
    assert_eq!(folders, VERSIONS.map(|(v, _)| v.to_owned()), "every folder is in VERSIONS");

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
