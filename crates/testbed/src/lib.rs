//! OrderFlow's test bed: run it as a cluster of processes on loopback ([`cluster`]), storm it
//! with faults and check its invariants ([`chaos`]), measure it ([`bench`]).

pub mod bench;
pub mod chaos;
pub mod cluster;
