//! Wiring: configuration in, running services out. `main.rs` is a thin shell over [`App`], and
//! the end-to-end tests boot the very same code.

mod api;
mod app;
pub mod config;
pub mod config_reference;
mod dependencies;
mod http_server;
mod jobs;
mod retry;
pub mod shutdown;
mod telemetry;
pub mod temporal;
mod worker;

pub use app::{App, AppConfig, Stopped};
pub use dependencies::{Dependencies, connect_store, migrate};
pub use http_server::ConnectionLimits;
pub use retry::retry;
pub use shutdown::Shutdown;
pub use telemetry::{flush_traces, init_tracing};
pub use worker::{RegisterWorkflow, this_release};
