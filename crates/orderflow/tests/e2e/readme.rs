//! The README's quick start, run as written, so that it cannot drift from what the service does:
//! its curl flow (against a test app instead of `make dev` on :8080) and its token example
//! (`make token`, against an app in `AUTH_MODE=jwt`).

use crate::support::{JWT_SECRET, TestApp};
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The README's fenced `bash` blocks.
fn bash_blocks() -> Vec<String> {
    let readme = std::fs::read_to_string(repo().join("README.md")).expect("README.md");
    let mut blocks = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in readme.lines() {
        match (&mut current, line.trim_start()) {
            (None, "```bash") => current = Some(Vec::new()),
            (Some(block), "```") => {
                blocks.push(block.join("\n"));
                current = None;
            }
            (Some(block), _) => block.push(line),
            (None, _) => {}
        }
    }
    blocks
}

/// The block containing `marker`, pointed at `app` instead of localhost:8080, each `curl`
/// also printing its HTTP status on a line of its own.
fn script(marker: &str, app: &TestApp) -> String {
    let block = bash_blocks()
        .into_iter()
        .find(|b| b.contains(marker))
        .unwrap_or_else(|| panic!("the README has no bash block with {marker:?}"));
    block
        .replace("http://localhost:8080", &app.address)
        .replace("curl ", "curl -sS -w '\\n%{http_code}\\n' ")
}

/// Runs `script` with bash in the repository (as a reader pasting it), failing on any error.
fn run(script: &str, env: &[(&str, &str)]) -> Vec<String> {
    let output = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!("set -euo pipefail\n{script}"))
        .current_dir(repo())
        .envs(env.iter().copied())
        .output()
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "the README's commands failed:\n{script}\n--- stdout\n{stdout}\n--- stderr\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout.lines().map(str::to_owned).collect()
}

/// The HTTP statuses the commands' `curl`s printed, in order.
fn statuses(lines: &[String]) -> Vec<u16> {
    lines.iter().filter_map(|l| l.parse::<u16>().ok()).filter(|c| (100..600).contains(c)).collect()
}

#[tokio::test]
async fn the_readmes_curl_flow_works_as_written() {
    let app = TestApp::spawn().await;
    let lines = run(&script("WF=$(curl", &app), &[]);
    // `echo "$WF"` printed the workflow id the POST answered.
    let workflow_id = lines.iter().find(|l| l.starts_with("order-")).expect("echo \"$WF\"");
    assert!(orderflow_domain::WorkflowId::parse(workflow_id).is_some(), "{workflow_id}");
    // status, state, cancel (202 or 409, depending on how far the order got), health, product.
    let codes = statuses(&lines);
    assert_eq!(codes.len(), 5, "{lines:?}");
    assert_eq!((codes[0], codes[1]), (200, 200), "{lines:?}");
    assert!([202, 409].contains(&codes[2]), "{lines:?}");
    assert_eq!((codes[3], codes[4]), (200, 200), "{lines:?}");
    let text = lines.join("\n");
    assert!(text.contains(&format!("\"workflow_id\":\"{workflow_id}\"")), "{text}");
    assert!(text.contains("step_history") && text.contains("prod-001"), "{text}");
}

#[tokio::test]
async fn the_readmes_token_example_works_as_written() {
    let app = TestApp::spawn_jwt().await;
    // A customer's order, so that the listing has something to show.
    let token = crate::support::token("customer-001", &[]);
    let response = app
        .http
        .post(app.url("/api/orders"))
        .bearer_auth(&token)
        .json(&crate::support::readme_order())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    // The order's row is written by its first step, after the 201: wait for the order to end,
    // so that the listing below cannot race it.
    let accepted: serde_json::Value = response.json().await.unwrap();
    let workflow_id = accepted["workflow_id"].as_str().expect("the order's workflow id");
    app.outcome(orderflow_domain::WorkflowId::parse(workflow_id).expect("a workflow id")).await;
    // `make token` signs with the development secret `make dev` keeps, or JWT_HS256_SECRET.
    let lines = run(&script("make --silent token", &app), &[("JWT_HS256_SECRET", JWT_SECRET)]);
    assert_eq!(statuses(&lines), [200], "{lines:?}");
    let text = lines.join("\n");
    assert!(text.contains("customer-001") && !text.contains("customer-002"), "{text}");
}
