//! The benchmark, for a few seconds, so that it cannot rot: every phase runs and produces
//! numbers, and the results are written. No timing is asserted (the machines are shared and
//! noisy; figures live in BENCHMARKS.md, from `make bench`).

use orderflow_testbed::bench::{BenchConfig, baseline::Shape};
use orderflow_testbed::{DEFAULT_DATABASE_URL, DEFAULT_TEMPORAL_CLI};
use std::path::PathBuf;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_benchmark_runs_every_phase_and_writes_its_results() {
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bench-smoke");
    let config = BenchConfig {
        orderflow_bin: PathBuf::from(env!("CARGO_BIN_EXE_orderflow")),
        temporal_cli: std::env::var("TEMPORAL_CLI")
            .unwrap_or_else(|_| DEFAULT_TEMPORAL_CLI.into())
            .into(),
        database_url: std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_DATABASE_URL.into()),
        // Free ones, picked at start: no collision with a dev server or another run.
        temporal_port: None,
        http_port: None,
        temporal_args: vec![],
        service_env: vec![],
        baseline: Shape { local_activities: true, eager_start: true },
        phase: Duration::from_secs(2),
        concurrency: 4,
        sweep: vec![0.5],
        status_connections: 4,
        slow_sockets: 200,
        overload: Duration::from_secs(3),
        // Beyond the service's default of 200 orders in flight, so that it may shed.
        burst: 250,
        soak_minutes: None,
        parked: 50,
        work_dir: out.join("work"),
        label: "smoke".into(),
    };
    let report = orderflow_testbed::bench::run(config).await.expect("the benchmark runs");
    println!("{report}");
    let names: Vec<&str> = report.phases.iter().map(|p| p.name.as_str()).collect();
    for expected in [
        "baseline, saturated",
        "orderflow, saturated",
        "orderflow, one in flight",
        "orderflow, open loop",
        "GET /api/orders/status",
        "orderflow, overload",
        "orderflow, burst",
    ] {
        let phase =
            report.phase(expected).unwrap_or_else(|| panic!("no phase {expected} in {names:?}"));
        assert!(phase.completed > 0, "{expected} completed nothing");
        assert_eq!(phase.errors, 0, "{expected} had errors");
        assert!(phase.latency.p50_ms > 0.0 && phase.latency.max_ms >= phase.latency.p99_ms);
        // Every request is accounted for, and every accepted order finished.
        let ended = phase.completed + phase.shed + phase.errors + phase.unfinished;
        assert_eq!(ended, phase.sent, "{expected}: {phase:?}");
        assert_eq!(phase.unfinished, 0, "{expected} left accepted orders unfinished");
        assert!(phase.service_alive && phase.service_rss_mib > 0.0, "{expected}: {phase:?}");
    }
    // Whether anything is shed depends on timing; that every request was sent does not.
    assert_eq!(report.phase("orderflow, burst").unwrap().sent, 250);
    assert!(report.ratio_to_baseline > 0.0);
    let steps: Vec<&str> = report.steps.iter().map(|(s, _)| s.as_str()).collect();
    assert!(steps.contains(&"create_order") && steps.contains(&"confirm_order"), "{steps:?}");
    report.save(&out.join("results")).unwrap();
    let json = std::fs::read_to_string(out.join("results.json")).unwrap();
    for field in
        ["ratio_to_baseline", "shed", "unfinished", "workflow_task_timeouts", "service_alive"]
    {
        assert!(json.contains(&format!("\"{field}\"")), "no {field} in the JSON");
    }
    // The versioning phases ran: the worker as a promoted deployment version took orders.
    let versioning = report.versioning.as_ref().expect("the versioning phases ran");
    assert!(versioning.unversioned_saturated > 0.0 && versioning.versioned_saturated > 0.0);
    assert!(json.contains("\"versioned_saturated\""));
    // The payment phases ran: orders parked at the customer and all completed once confirmed.
    let payments = report.payments.as_ref().expect("the payment phases ran");
    assert!(payments.in_process_saturated > 0.0 && payments.provider_saturated > 0.0);
    assert_eq!((payments.parked.orders, payments.parked.place_failed), (50, 0), "{payments}");
    assert_eq!(payments.parked.confirm_failed, 0, "{payments}");
    assert_eq!(payments.parked.unfinished, 0, "{payments}");
    assert!(payments.parked.confirmation_to_completed.p50_ms > 0.0, "{payments}");
    assert!(json.contains("\"provider_cost_percent\""));
    let svg = std::fs::read_to_string(out.join("results.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("polyline"));
}
