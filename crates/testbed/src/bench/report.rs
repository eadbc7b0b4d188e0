//! The results: phases, the soak's minutes, their JSON (serde) and their printed table.

use super::baseline::Shape;
use super::driver::SETTLE;
use super::payments::PaymentPhases;
use super::soak::{self, SoakMinute};
use super::stats::Percentiles;
use super::versioning::VersioningCost;
use super::{BURST, OVERLOAD, plot};
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct Phase {
    pub name: String,
    pub mode: String,
    pub seconds: f64,
    pub sent: usize,
    pub completed: usize,
    pub errors: usize,
    /// Refused with 503 `overloaded` (admission control): nothing created, no latency sample.
    pub shed: usize,
    /// Accepted (201) but not terminal within [`SETTLE`] of that: must be 0.
    pub unfinished: usize,
    /// Completed per second over the phase.
    pub throughput: f64,
    /// Create → terminal of the completed units, from their scheduled send times.
    pub latency: Percentiles,
    pub api_response: Percentiles,
    /// CPU seconds per completed unit, by process.
    pub cpu_per_unit: Vec<(String, f64)>,
    /// Workflow tasks the Temporal server timed out from the phase's start until no workflow
    /// ran any more after it.
    pub workflow_task_timeouts: u64,
    /// Resident memory (VmRSS) of `orderflow serve` at the end of the phase.
    pub service_rss_mib: f64,
    /// Whether `orderflow serve` still ran at the end of the phase.
    pub service_alive: bool,
}

impl Phase {
    /// Orders the service took (201), finished or not.
    pub fn accepted(&self) -> usize {
        self.completed + self.unfinished
    }
}

#[derive(Debug, Serialize)]
pub struct BenchReport {
    pub label: String,
    /// The commit the run's code was at (`-dirty`: with uncommitted changes), and the command:
    /// what a figure citing this file was measured on and with.
    pub commit: String,
    pub command: String,
    pub machine: String,
    pub baseline_shape: Shape,
    pub phases: Vec<Phase>,
    /// OrderFlow's saturated rate ÷ the baseline's, measured in this run.
    pub ratio_to_baseline: f64,
    /// Where an order's time goes, with one in flight: each step's duration (workflow time,
    /// from the state objects of the last orders of that phase).
    pub steps: Vec<(String, Percentiles)>,
    /// One row per minute of a soak run (`--soak-minutes`); empty otherwise.
    pub soak: Vec<SoakMinute>,
    /// The payment phases (provider cost, parked orders); `None` in a soak or with
    /// `--parked 0`.
    pub payments: Option<PaymentPhases>,
    /// What Worker Versioning costs (saturated, unversioned vs pinned); `None` in a soak.
    pub versioning: Option<VersioningCost>,
}

impl BenchReport {
    /// Writes `<stem>.json` and, unless this was a soak (which has no sweep to plot),
    /// `<stem>.svg`.
    pub fn save(&self, stem: &std::path::Path) -> anyhow::Result<()> {
        if let Some(dir) = stem.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(stem.with_extension("json"), serde_json::to_vec_pretty(self)?)?;
        if self.soak.is_empty() {
            plot::latency_vs_throughput(self, &stem.with_extension("svg"))?;
        }
        Ok(())
    }

    pub fn phase(&self, prefix: &str) -> Option<&Phase> {
        self.phases.iter().find(|p| p.name.starts_with(prefix))
    }
}

impl std::fmt::Display for BenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "benchmark: {} — {}", self.label, self.machine)?;
        writeln!(
            f,
            "{:<46} {:>8} {:>8} {:>8} {:>8} {:>8} {:>6} {:>6} {:>6}  cpu ms/unit (orderflow/temporal/postgres/bench)",
            "phase", "done/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "errors", "shed", "wft to"
        )?;
        for p in &self.phases {
            let cpu: Vec<String> =
                p.cpu_per_unit.iter().map(|(_, s)| format!("{:.1}", s * 1000.0)).collect();
            writeln!(
                f,
                "{:<46} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>6} {:>6} {:>6}  {}",
                p.name,
                p.throughput,
                p.latency.p50_ms,
                p.latency.p90_ms,
                p.latency.p99_ms,
                p.latency.max_ms,
                p.errors,
                p.shed,
                p.workflow_task_timeouts,
                cpu.join(" / ")
            )?;
        }
        for p in
            self.phases.iter().filter(|p| p.name.starts_with(OVERLOAD) || p.name.starts_with(BURST))
        {
            stress(f, p)?;
        }
        if !self.soak.is_empty() {
            return soak::write(f, &self.soak);
        }
        writeln!(f, "steps with one order in flight (p50 / p99 ms):")?;
        for (step, p) in &self.steps {
            writeln!(f, "  {step:<18} {:>7.1} {:>7.1}", p.p50_ms, p.p99_ms)?;
        }
        writeln!(f, "orderflow orders/s ÷ baseline workflows/s = {:.2}", self.ratio_to_baseline)?;
        if let Some(versioning) = &self.versioning {
            writeln!(f, "{versioning}")?;
        }
        match &self.payments {
            Some(payments) => write!(f, "{payments}"),
            None => Ok(()),
        }
    }
}

/// The overload and burst phases in words: what was taken, what was shed, whether everything
/// taken finished, and whether the service survived.
fn stress(f: &mut std::fmt::Formatter<'_>, p: &Phase) -> std::fmt::Result {
    let share = if p.sent > 0 { p.shed as f64 / p.sent as f64 * 100.0 } else { 0.0 };
    writeln!(
        f,
        "{}: {} sent, {} accepted, {} shed ({share:.1}%), {} errors; accepted p50 / p99 {:.1} / {:.1} ms; \
         {} workflow task timeouts; orderflow serve {}, RSS {:.1} MiB",
        p.name,
        p.sent,
        p.accepted(),
        p.shed,
        p.errors,
        p.latency.p50_ms,
        p.latency.p99_ms,
        p.workflow_task_timeouts,
        if p.service_alive { "alive" } else { "DEAD" },
        p.service_rss_mib
    )?;
    if p.name.starts_with(BURST) && p.unfinished == 0 {
        // Latencies count from the release, so the largest is when the last one finished.
        writeln!(
            f,
            "  every accepted order terminal {:.1} s after the release",
            p.latency.max_ms / 1000.0
        )?;
    }
    match p.unfinished {
        0 => writeln!(f, "  accepted orders not terminal: 0"),
        n => writeln!(
            f,
            "  !!! {n} ACCEPTED ORDERS NOT TERMINAL {} s after acceptance (must be 0)",
            SETTLE.as_secs()
        ),
    }
}
