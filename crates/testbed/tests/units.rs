//! The test bed's own units, as an integration test (the library is not compiled a second time
//! as a test harness): free ports, the fault schedule's seed, the Temporal server's timeout
//! counter, the benchmark's statistics and process probes.

use orderflow_testbed::bench::stats::{Percentiles, Probe, is_alive, open_fds, rss_mib};
use orderflow_testbed::chaos::faults::{FaultPlan, schedule};
use orderflow_testbed::cluster::count_workflow_task_timeouts;
use orderflow_testbed::{FREE_PORT_RANGE, free_ports};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::net::TcpListener;
use std::time::Duration;

#[test]
fn free_ports_are_consecutive_and_free() {
    let base = free_ports(3).unwrap();
    assert!(FREE_PORT_RANGE.contains(&base) && FREE_PORT_RANGE.contains(&(base + 2)));
    let listeners: Vec<TcpListener> =
        (base..base + 3).map(|port| TcpListener::bind(("127.0.0.1", port)).unwrap()).collect();
    assert_eq!(listeners.len(), 3);
    assert!(free_ports(1).is_ok() && free_ports(0).is_ok());
    assert!(free_ports(20_000).is_err());
}

/// A recorded seed must replay the same faults in the same order after any toolchain or
/// platform change: the seeded stream and the schedule drawn from it are pinned here.
#[test]
fn a_seed_draws_the_same_schedule_everywhere() {
    let plan: FaultPlan = "kill-worker=2,kill-api=1,restart-temporal=1".parse().unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(20_261_126 ^ 0xFA17);
    let drawn: Vec<&str> = schedule(&plan, &mut rng).iter().map(|f| f.name()).collect();
    let pause: u64 = rng.random_range(1_000..3_000);
    assert_eq!(drawn, ["restart-temporal", "kill-worker", "kill-api", "kill-worker"]);
    assert_eq!(pause, 2632);
}

#[test]
fn workflow_task_timeouts_are_summed_over_first_attempt() {
    let metrics = r#"# TYPE start_to_close_timeout counter
start_to_close_timeout{first_attempt="false",namespace="default",operation="TimerActiveTaskWorkflowTaskTimeout",service_name="history"} 12
start_to_close_timeout{first_attempt="true",namespace="default",operation="TimerActiveTaskWorkflowTaskTimeout",service_name="history"} 200
start_to_close_timeout{first_attempt="true",namespace="default",operation="TimerActiveTaskActivityTimeout",service_name="history"} 7
"#;
    assert_eq!(count_workflow_task_timeouts(metrics), 212);
    assert_eq!(count_workflow_task_timeouts("# nothing timed out yet\n"), 0);
}

#[test]
fn nearest_rank_percentiles() {
    let samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
    let p = Percentiles::of(&samples);
    assert_eq!((p.p50_ms, p.p90_ms, p.p99_ms, p.max_ms), (50.0, 90.0, 99.0, 100.0));
    assert_eq!(Percentiles::of(&[Duration::from_millis(7)]).p99_ms, 7.0);
}

#[test]
fn this_process_has_used_some_cpu() {
    let spin = std::time::Instant::now();
    while spin.elapsed() < Duration::from_millis(50) {}
    assert!(Probe::Myself.cpu_seconds() > 0.0);
}

#[test]
fn this_process_is_alive_with_memory_and_files() {
    let me = std::process::id() as i32;
    assert!(is_alive(me) && rss_mib(me) > 0.0 && open_fds(me) > 0);
    assert!(!is_alive(-1) && rss_mib(-1) == 0.0);
}
