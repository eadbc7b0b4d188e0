//! Wiring: configuration in, running services out. `main.rs` is a thin shell over this, and
//! the end-to-end tests boot the very same code.

pub mod config;
mod startup;
mod telemetry;

pub use startup::{
    ConnectionLimits, Dependencies, Shutdown, api_context, build_worker, connect_store,
    connect_temporal, exit_after_grace, migrate, retry, run_worker, serve_http, serve_metrics,
    shutdown_signal,
};
pub use telemetry::init_tracing;
