//! The soak: what only shows over time (memory or file descriptors that keep growing, database
//! connections that leak, an engine that works harder as its history grows) at a load the
//! service should carry forever, half its saturated rate. One row a minute.
//!
//! Each minute is an open-loop run of its own: the few orders in flight at a minute's end
//! (tens of milliseconds' worth at half the rate) finish before the next minute starts, so
//! each row counts whole orders.

use super::Watch;
use super::driver::{Mode, OrderTarget, Outcome, drive};
use super::stats::{Percentiles, Probe, open_fds, rss_mib};
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Serialize)]
pub struct SoakMinute {
    pub minute: u32,
    pub sent: usize,
    pub completed: usize,
    pub errors: usize,
    pub shed: usize,
    pub unfinished: usize,
    /// Create → terminal, from the scheduled send times.
    pub latency: Percentiles,
    pub workflow_task_timeouts: u64,
    /// `orderflow serve` at the end of the minute.
    pub service_rss_mib: f64,
    pub service_open_fds: usize,
    /// Connections to the benchmark's database, the benchmark's own (at most 4) included.
    pub database_connections: i64,
    /// CPU seconds the Temporal server used during the minute.
    pub temporal_cpu_seconds: f64,
}

const MINUTE: Duration = Duration::from_secs(60);

pub async fn run(
    orders: Arc<OrderTarget>,
    rate: f64,
    minutes: u32,
    watch: &Watch<'_>,
) -> anyhow::Result<Vec<SoakMinute>> {
    let temporal = Probe::Pid(watch.temporal_pid);
    println!("soak: {minutes} minutes at {rate:.1}/s (half the saturated rate)");
    println!("{HEADER}");
    let mut rows = Vec::new();
    for minute in 1..=minutes {
        let cpu_before = temporal.cpu_seconds();
        let timeouts_before = watch.cluster.workflow_task_timeouts().await?;
        let label = format!("soak, minute {minute} of {minutes}");
        let Outcome { samples, errors, shed, unfinished, sent } =
            drive(orders.clone(), Mode::Open { rate }, MINUTE, &label).await;
        let database_connections = sqlx::query_scalar!(
            r#"SELECT count(*) AS "connections!" FROM pg_stat_activity WHERE datname = $1"#,
            watch.cluster.database_name
        )
        .fetch_one(watch.cluster.store.pool())
        .await?;
        let timeouts = watch.cluster.workflow_task_timeouts().await?;
        let row = SoakMinute {
            minute,
            sent,
            completed: samples.len(),
            errors,
            shed,
            unfinished,
            latency: Percentiles::of(&samples.iter().map(|s| s.latency).collect::<Vec<_>>()),
            workflow_task_timeouts: timeouts.saturating_sub(timeouts_before),
            service_rss_mib: rss_mib(watch.service_pid),
            service_open_fds: open_fds(watch.service_pid),
            database_connections,
            temporal_cpu_seconds: temporal.cpu_seconds() - cpu_before,
        };
        println!("{}", line(&row));
        rows.push(row);
    }
    Ok(rows)
}

const HEADER: &str = "minute     done   p50 ms   p99 ms errors   shed unfin wft to  RSS MiB  fds  db conns  temporal cpu s";

fn line(r: &SoakMinute) -> String {
    format!(
        "{:>6} {:>8} {:>8.1} {:>8.1} {:>6} {:>6} {:>5} {:>6} {:>8.1} {:>4} {:>9} {:>15.1}",
        r.minute,
        r.completed,
        r.latency.p50_ms,
        r.latency.p99_ms,
        r.errors,
        r.shed,
        r.unfinished,
        r.workflow_task_timeouts,
        r.service_rss_mib,
        r.service_open_fds,
        r.database_connections,
        r.temporal_cpu_seconds
    )
}

/// The table, then the first minute against the last.
pub fn write(f: &mut std::fmt::Formatter<'_>, rows: &[SoakMinute]) -> std::fmt::Result {
    writeln!(f, "soak, one row a minute:")?;
    writeln!(f, "{HEADER}")?;
    for row in rows {
        writeln!(f, "{}", line(row))?;
    }
    let (Some(first), Some(last)) = (rows.first(), rows.last()) else { return Ok(()) };
    let total = |n: fn(&SoakMinute) -> usize| rows.iter().map(n).sum::<usize>();
    write!(
        f,
        "soak, minute 1 → minute {}: orders {} → {}, p99 {:.1} → {:.1} ms, RSS {:.1} → {:.1} MiB, \
         open fds {} → {}, database connections {} → {}, Temporal CPU {:.1} → {:.1} s a minute; \
         in all: {} errors, {} shed, {} unfinished, {} workflow task timeouts",
        last.minute,
        first.completed,
        last.completed,
        first.latency.p99_ms,
        last.latency.p99_ms,
        first.service_rss_mib,
        last.service_rss_mib,
        first.service_open_fds,
        last.service_open_fds,
        first.database_connections,
        last.database_connections,
        first.temporal_cpu_seconds,
        last.temporal_cpu_seconds,
        total(|r| r.errors),
        total(|r| r.shed),
        total(|r| r.unfinished),
        rows.iter().map(|r| r.workflow_task_timeouts).sum::<u64>()
    )
}
