//! Faults, injected one after another on a seeded schedule while the load runs.

mod webhooks;

use crate::cluster::Cluster;
use anyhow::Context;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};
use tokio::process::Command;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fault {
    /// SIGKILL a worker, restart it after a pause.
    KillWorker,
    /// SIGKILL an API process, restart it after a pause.
    KillApi,
    /// SIGKILL the Temporal dev server and start it again on the same state.
    RestartTemporal,
    /// Restart PostgreSQL (immediate shutdown: a crash for its clients). Needs root and a local
    /// Debian cluster; otherwise the service's connections are terminated instead.
    RestartPostgres,
    /// `pg_terminate_backend` every connection of the service.
    TerminateBackends,
    /// SIGSTOP a worker for longer than an activity's timeout, then SIGCONT.
    PauseWorker,
    /// Rename one of the tables the steps write for 20 s (a broken migration, a restore that
    /// lost a table): steps fail, orders wait and are flagged as stuck, then resume.
    BreakSchema,
    /// SIGKILL the payment provider, restart it after a pause: calls fail meanwhile, due
    /// confirmations and webhooks are sent late, from its ledger.
    KillProvider,
    /// SIGSTOP the payment provider for 3–8 s: calls hang until they time out (an outage).
    PauseProvider,
    /// Webhooks an attacker could send: unsigned, signed with a guessed secret, stale, tampered.
    /// Each must be refused (400) and change nothing.
    ForgedWebhooks,
    /// Genuine, signed answers replayed late (after their order ended) and repeated: each must
    /// be acknowledged and change nothing but voiding what an ended order still holds.
    LateWebhooks,
    /// Release the next build of the workers with orders in flight (Worker Versioning): start
    /// its workers, promote it, let the old build drain, stop the old workers.
    RollingDeploy,
    /// A provider that lies (or a leaked secret): correctly signed events that the provider's
    /// own ledger contradicts. Each must be acknowledged as `contradicted` and change nothing.
    LyingProvider,
}

impl Fault {
    const ALL: [Fault; 13] = [
        Fault::KillWorker,
        Fault::KillApi,
        Fault::RestartTemporal,
        Fault::RestartPostgres,
        Fault::TerminateBackends,
        Fault::PauseWorker,
        Fault::BreakSchema,
        Fault::KillProvider,
        Fault::PauseProvider,
        Fault::ForgedWebhooks,
        Fault::LateWebhooks,
        Fault::RollingDeploy,
        Fault::LyingProvider,
    ];

    pub fn name(&self) -> &'static str {
        match self {
            Fault::KillWorker => "kill-worker",
            Fault::KillApi => "kill-api",
            Fault::RestartTemporal => "restart-temporal",
            Fault::RestartPostgres => "restart-postgres",
            Fault::TerminateBackends => "terminate-backends",
            Fault::PauseWorker => "pause-worker",
            Fault::BreakSchema => "break-schema",
            Fault::KillProvider => "kill-provider",
            Fault::PauseProvider => "pause-provider",
            Fault::ForgedWebhooks => "forged-webhooks",
            Fault::LateWebhooks => "late-webhooks",
            Fault::RollingDeploy => "rolling-deploy",
            Fault::LyingProvider => "lying-provider",
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How many of each fault: `kill-worker=3,kill-api=2,...`.
#[derive(Debug, Clone, Default)]
pub struct FaultPlan(pub BTreeMap<Fault, usize>);

impl FromStr for FaultPlan {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut plan = BTreeMap::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, count) =
                part.split_once('=').ok_or_else(|| format!("{part:?} is not name=count"))?;
            let fault = Fault::ALL.into_iter().find(|f| f.name() == name).ok_or_else(|| {
                format!(
                    "unknown fault {name:?}; known: {}",
                    Fault::ALL.map(|f| f.name()).join(", ")
                )
            })?;
            let count = count.parse().map_err(|_| format!("{count:?} is not a count"))?;
            plan.insert(fault, count);
        }
        Ok(Self(plan))
    }
}

#[derive(Debug, Clone)]
pub struct FaultRecord {
    pub at: Duration,
    pub fault: Fault,
    pub detail: String,
    /// What the service did wrong under this fault, seen while injecting it (a forged webhook
    /// accepted, say); reported as a violation.
    pub violation: Option<String>,
}

/// Injects every planned fault in a seeded order with seeded pauses in between.
pub async fn inject(
    cluster: &mut Cluster,
    plan: &FaultPlan,
    seed: u64,
    started: Instant,
) -> Vec<FaultRecord> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xFA17);
    let schedule = schedule(plan, &mut rng);
    let mut records = Vec::new();
    for fault in schedule {
        tokio::time::sleep(Duration::from_millis(rng.random_range(1_000..3_000))).await;
        let at = started.elapsed();
        let (detail, violation) = match inject_one(cluster, fault, &mut rng).await {
            Ok(Injected { detail, violation }) => (detail, violation),
            Err(e) => (format!("failed to inject: {e:#}"), None),
        };
        println!("  [{:>6.1}s] {fault}: {detail}", at.as_secs_f64());
        records.push(FaultRecord { at, fault, detail, violation });
    }
    records
}

/// The plan's faults in a seeded order. ChaCha8 is documented to give the same stream for a
/// seed on every platform and release (rand's `StdRng` is not), so a seed reproduces its run.
pub fn schedule(plan: &FaultPlan, rng: &mut ChaCha8Rng) -> Vec<Fault> {
    let mut schedule: Vec<Fault> =
        plan.0.iter().flat_map(|(f, n)| std::iter::repeat_n(*f, *n)).collect();
    schedule.shuffle(rng);
    schedule
}

/// What injecting a fault did, and what it saw go wrong.
struct Injected {
    detail: String,
    violation: Option<String>,
}

impl From<String> for Injected {
    fn from(detail: String) -> Self {
        Self { detail, violation: None }
    }
}

async fn inject_one(
    cluster: &mut Cluster,
    fault: Fault,
    rng: &mut ChaCha8Rng,
) -> anyhow::Result<Injected> {
    match fault {
        Fault::KillProvider | Fault::PauseProvider => {
            let provider = cluster.provider.as_mut().context("the cluster has no provider")?;
            if fault == Fault::KillProvider {
                let down = Duration::from_millis(rng.random_range(500..3_000));
                provider.kill().await;
                tokio::time::sleep(down).await;
                provider.start()?;
                Ok(format!("killed, restarted after {:.1}s", down.as_secs_f64()).into())
            } else {
                let frozen = Duration::from_millis(rng.random_range(3_000..8_000));
                provider.pause();
                tokio::time::sleep(frozen).await;
                provider.resume();
                Ok(format!("frozen for {:.1}s", frozen.as_secs_f64()).into())
            }
        }
        Fault::ForgedWebhooks => webhooks::forge(cluster, rng).await,
        Fault::LateWebhooks => webhooks::replay_late(cluster, rng).await,
        Fault::LyingProvider => webhooks::lie(cluster, rng).await,
        // Orders wait at most a few seconds for their customer in the chaos run; a step stuck
        // behind a broken schema, 20 s.
        Fault::RollingDeploy => {
            cluster.rolling_deploy(Duration::from_secs(120)).await.map(Injected::from)
        }
        other => inject_process_or_database(cluster, other, rng).await.map(Injected::from),
    }
}

async fn inject_process_or_database(
    cluster: &mut Cluster,
    fault: Fault,
    rng: &mut ChaCha8Rng,
) -> anyhow::Result<String> {
    match fault {
        Fault::KillWorker | Fault::KillApi => {
            let processes =
                if fault == Fault::KillWorker { &mut cluster.workers } else { &mut cluster.apis };
            let i = rng.random_range(0..processes.len());
            let down = Duration::from_millis(rng.random_range(500..3_000));
            processes[i].kill().await;
            tokio::time::sleep(down).await;
            processes[i].start()?;
            Ok(format!("{} killed, restarted after {:.1}s", processes[i].name, down.as_secs_f64()))
        }
        Fault::PauseWorker => {
            let i = rng.random_range(0..cluster.workers.len());
            // Longer than an activity's start-to-close timeout (10 s): its work is retried
            // elsewhere while it is frozen, and its late results must do no harm.
            let frozen = Duration::from_millis(rng.random_range(12_000..15_000));
            cluster.workers[i].pause();
            tokio::time::sleep(frozen).await;
            cluster.workers[i].resume();
            Ok(format!("{} frozen for {:.1}s", cluster.workers[i].name, frozen.as_secs_f64()))
        }
        Fault::RestartTemporal => {
            let started = Instant::now();
            cluster.temporal.kill().await;
            tokio::time::sleep(Duration::from_millis(rng.random_range(500..2_000))).await;
            cluster.temporal.start()?;
            cluster.wait_for_temporal().await?;
            Ok(format!("killed and back in {:.1}s", started.elapsed().as_secs_f64()))
        }
        Fault::TerminateBackends => {
            let n = terminate_backends(cluster).await?;
            Ok(format!("{n} connections terminated"))
        }
        Fault::BreakSchema => {
            let table = ["payments", "reservations", "notifications"][rng.random_range(0..3)];
            let broken = Duration::from_secs(20);
            rename(cluster, table, &format!("{table}_broken")).await?;
            tokio::time::sleep(broken).await;
            rename(cluster, &format!("{table}_broken"), table).await?;
            Ok(format!("table {table} missing for {} s", broken.as_secs()))
        }
        Fault::RestartPostgres => match local_cluster(cluster).await {
            Some(version) => {
                let started = Instant::now();
                let status = Command::new("pg_ctlcluster")
                    .args([
                        "--skip-systemctl-redirect",
                        &version,
                        "main",
                        "restart",
                        "-m",
                        "immediate",
                    ])
                    .status()
                    .await?;
                anyhow::ensure!(status.success(), "pg_ctlcluster {version} main restart failed");
                Ok(format!(
                    "PostgreSQL {version} restarted in {:.1}s",
                    started.elapsed().as_secs_f64()
                ))
            }
            None => {
                let n = terminate_backends(cluster).await?;
                Ok(format!(
                    "cannot restart PostgreSQL here (needs root and a local cluster); {n} connections terminated instead"
                ))
            }
        },
        Fault::KillProvider
        | Fault::PauseProvider
        | Fault::ForgedWebhooks
        | Fault::LateWebhooks
        | Fault::LyingProvider
        | Fault::RollingDeploy => {
            unreachable!("handled by inject_one")
        }
    }
}

/// Renames a table, retrying while the steps' transactions hold it (the rename waits for their
/// locks at most `lock_timeout`).
async fn rename(cluster: &Cluster, from: &str, to: &str) -> anyhow::Result<()> {
    let statement = format!("ALTER TABLE {from} RENAME TO {to}");
    let mut attempts = 0;
    loop {
        match sqlx::raw_sql(&statement).execute(cluster.store.pool()).await {
            Ok(_) => return Ok(()),
            Err(e) if attempts < 20 => {
                attempts += 1;
                eprintln!("  {statement}: {e}; retrying");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

async fn terminate_backends(cluster: &Cluster) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar!(
        r#"SELECT count(pg_terminate_backend(pid)) AS "terminated!" FROM pg_stat_activity
           WHERE datname = $1 AND pid <> pg_backend_pid()"#,
        cluster.database_name
    )
    .fetch_one(cluster.store.pool())
    .await?)
}

/// The local Debian PostgreSQL cluster's version, if the service's database is on it and we
/// may restart it (root).
async fn local_cluster(cluster: &Cluster) -> Option<String> {
    let host = cluster.database.get_host();
    let local = matches!(host, "localhost" | "127.0.0.1" | "::1") || host.starts_with('/');
    if !local || !nix::unistd::geteuid().is_root() {
        return None;
    }
    let mut versions: Vec<String> = std::fs::read_dir("/etc/postgresql")
        .ok()?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|v| std::path::Path::new(&format!("/etc/postgresql/{v}/main")).exists())
        .collect();
    versions.sort();
    versions.pop()
}
