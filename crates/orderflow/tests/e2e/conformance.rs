//! The OpenAPI description is the contract, checked by an independent tester: Schemathesis
//! (PyPI, pinned in scripts/bootstrap.sh) generates requests from `/api/openapi.json` of the
//! running service and runs every check in every phase (examples, coverage, fuzzing, stateful):
//! no 5xx, every status and header documented, every answer matching its schema, every
//! schema-valid request accepted and every schema-violating one refused. Settings in
//! `tests/conformance/schemathesis.toml`; `SCHEMATHESIS_SEED=<n>` tries other cases.

use crate::support::{ADMIN_KEY, ProviderKnobs, TestApp, jwt_http, test_http, token};
use orderflow::config::HttpConfig;
use std::path::Path;
use std::time::Duration;

#[tokio::test]
async fn the_description_holds_for_every_generated_request() {
    conform(test_http(), None, "off").await;
}

#[tokio::test]
async fn the_description_holds_with_tokens_required() {
    // The README's customer, so that the description's own example is accepted.
    let token = token("customer-001", &[]);
    conform(jwt_http(), Some(token), "jwt").await;
}

async fn conform(http: HttpConfig, token: Option<String>, mode: &str) {
    let cli = std::env::var("SCHEMATHESIS_CLI").unwrap_or_else(|_| "st".into());
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/schemathesis.toml");
    let seed = std::env::var("SCHEMATHESIS_SEED").unwrap_or_else(|_| "20261127".into());
    // With the payment provider and its webhooks, so that the webhook endpoint is exercised
    // as deployed (not answering 503 "not configured").
    let knobs = ProviderKnobs::default();
    let app =
        TestApp::spawn_with_provider_configured(knobs, Duration::from_secs(60), http, |_| {}).await;

    let mut command = tokio::process::Command::new(&cli);
    command
        .arg("--config-file")
        .arg(&config)
        .arg("run")
        .arg(app.url("/api/openapi.json"))
        .args(["--checks", "all", "--seed", &seed, "--no-color"])
        // The seed alone decides the cases: no examples remembered from an earlier run.
        .args(["--generation-database", "none"])
        // The admin operations are exercised with the service key in both modes.
        .args(["--header", &format!("X-API-Key: {ADMIN_KEY}")])
        .current_dir(crate::support::artifacts());
    if let Some(token) = &token {
        command.args(["--header", &format!("Authorization: Bearer {token}")]);
    }
    let output = command.output().await.unwrap_or_else(|e| {
        panic!("{cli} runs ({e}); `make test` installs Schemathesis, SCHEMATHESIS_CLI names it")
    });
    let report = String::from_utf8_lossy(&output.stdout);
    let log = crate::support::artifacts().join(format!("schemathesis-{mode}.txt"));
    std::fs::write(&log, report.as_bytes()).expect("keep the report");
    assert!(
        output.status.success(),
        "Schemathesis found failures ({mode}, seed {seed}; also in {}):\n{report}\n{}",
        log.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    // Not a vacuous pass: every operation of the description was tested, in every phase.
    let operations = app.get_json("/api/openapi.json").await.1["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|item| item.as_object().unwrap().len())
        .sum::<usize>();
    assert!(report.contains(&format!("Tested: {operations}")), "{report}");
    for phase in ["Examples", "Coverage", "Fuzzing", "Stateful"] {
        assert!(report.contains(&format!("✅ {phase}")), "phase {phase} did not pass:\n{report}");
    }
}
