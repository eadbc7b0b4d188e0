//! Wiring: configuration in, running services out. `main.rs` is a thin shell over this, and
//! the end-to-end tests boot the very same code.

pub mod config;
pub mod release;
mod startup;
mod telemetry;

pub use startup::{
    ConnectionLimits, Dependencies, Shutdown, api_context, build_worker, connect_store,
    connect_temporal, exit_after_grace, metrics_listener, migrate, order_steps, retry, run_worker,
    sdk_runtime, serve_http, serve_metrics, shutdown_signal, temporal_connection, worker_options,
};
pub use telemetry::{flush_traces, init_tracing};
