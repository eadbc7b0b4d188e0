//! OrderFlow's test bed: run it as a cluster of processes on loopback ([`cluster`]), storm it
//! with faults and check its invariants ([`chaos`]), measure it ([`bench`]).

pub mod bench;
pub mod chaos;
pub mod cluster;
pub mod identity;
pub mod release;

use std::net::TcpListener;

/// The PostgreSQL server used when `DATABASE_URL` is not set. A run creates a database of its
/// own on it.
pub use orderflow_store::DEFAULT_DATABASE_URL;

/// The Temporal CLI, used when `TEMPORAL_CLI` is not set: the one on the `PATH`.
pub const DEFAULT_TEMPORAL_CLI: &str = "temporal";

/// The commit the run's code is at (`git describe --always --dirty`: a suffix `-dirty` says
/// the tree had uncommitted changes), or `unknown` outside a git checkout.
pub fn commit() -> String {
    std::process::Command::new("git")
        .args(["describe", "--always", "--dirty", "--abbrev=12"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".into())
}

/// Where [`free_ports`] looks: below Linux's default ephemeral range (32768–60999), from which
/// the kernel picks the local port of every outgoing connection. The chaos suite restarts
/// processes on the ports they had; were those ephemeral, a connection made while a process
/// is down could take its port, and it could not come back.
pub const FREE_PORT_RANGE: std::ops::Range<u16> = 20_000..32_000;

/// The first of `n` consecutive ports on 127.0.0.1 that nothing listens on at this moment (one
/// port when `n` is 0), so that a cluster never collides with a dev server or another run on
/// the machine. Tried at random places in [`FREE_PORT_RANGE`], by binding every port of the
/// range; every listener is dropped before it returns. Another process could take a port before
/// the cluster binds it; on a test machine that is unlikely enough.
pub fn free_ports(n: usize) -> anyhow::Result<u16> {
    let n = u16::try_from(n.max(1))?;
    let (low, high) = (FREE_PORT_RANGE.start, FREE_PORT_RANGE.end);
    anyhow::ensure!(n <= high - low, "{n} ports do not fit in {FREE_PORT_RANGE:?}");
    for _ in 0..200 {
        let base = rand::random_range(low..=high - n);
        let listeners: std::io::Result<Vec<TcpListener>> =
            (base..base + n).map(|port| TcpListener::bind(("127.0.0.1", port))).collect();
        if listeners.is_ok() {
            return Ok(base);
        }
    }
    anyhow::bail!("found no {n} consecutive free ports in {FREE_PORT_RANGE:?} on 127.0.0.1")
}
