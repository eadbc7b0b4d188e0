//! Percentiles, and what /proc tells of a process: CPU time, memory, open files, whether it runs.

use nix::unistd::{SysconfVar, sysconf};
use serde::Serialize;
use std::time::Duration;

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Percentiles {
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Percentiles {
    pub fn of(samples: &[Duration]) -> Self {
        if samples.is_empty() {
            return Self::default();
        }
        let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
        ms.sort_by(f64::total_cmp);
        // Nearest rank: the smallest sample with at least p% of samples at or below it.
        let rank =
            |p: f64| ms[((p / 100.0 * ms.len() as f64).ceil() as usize).clamp(1, ms.len()) - 1];
        Self {
            p50_ms: rank(50.0),
            p90_ms: rank(90.0),
            p99_ms: rank(99.0),
            max_ms: ms[ms.len() - 1],
        }
    }
}

/// CPU seconds (user + system) used so far by the processes a probe selects.
#[derive(Debug, Clone)]
pub enum Probe {
    Pid(i32),
    /// Every process with this command name (e.g. all `postgres` backends).
    Name(String),
    /// This process.
    Myself,
}

impl Probe {
    pub fn cpu_seconds(&self) -> f64 {
        let ticks = match self {
            Probe::Pid(pid) => process_ticks(*pid).unwrap_or(0),
            Probe::Myself => process_ticks(std::process::id() as i32).unwrap_or(0),
            Probe::Name(name) => std::fs::read_dir("/proc")
                .map(|entries| {
                    entries
                        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
                        .filter(|pid| {
                            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                                .is_ok_and(|comm| comm.trim() == name)
                        })
                        .filter_map(process_ticks)
                        .sum()
                })
                .unwrap_or(0),
        };
        ticks as f64 / clock_ticks_per_second()
    }
}

/// utime + stime of a process and its waited-for children, in clock ticks.
fn process_ticks(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces; the fields after it are space-separated.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
    Some(field(14)? + field(15)? + field(16)? + field(17)?)
}

/// Resident memory (VmRSS) in MiB; 0 when the process is gone.
pub fn rss_mib(pid: i32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

/// File descriptors the process holds open (sockets included).
pub fn open_fds(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |entries| entries.count())
}

/// Whether the process exists and has not exited: a child that died stays as a zombie (state
/// `Z`) until it is waited for, so its /proc entry alone proves nothing.
pub fn is_alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        let state = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().next());
        !matches!(state, None | Some("Z" | "X"))
    })
}

/// The kernel's clock ticks per second (`CLK_TCK`, the unit of /proc's CPU times); 100, the
/// usual value, if it cannot be read.
fn clock_ticks_per_second() -> f64 {
    match sysconf(SysconfVar::CLK_TCK) {
        Ok(Some(ticks)) if ticks > 0 => ticks as f64,
        _ => 100.0,
    }
}
