//! End-to-end tests: the real service over HTTP, with real PostgreSQL and Temporal.

mod access;
mod bad_input;
mod cancel;
mod concurrency;
mod configuration;
mod conformance;
mod dashboard;
mod deploy;
mod deployment;
mod fuzz;
mod hardening;
mod idempotency;
mod operations;
mod orders;
mod overload;
mod payments;
mod provider;
mod readme;
mod rolling_deploy;
mod shutdown;
mod support;
mod temporal_tls;
mod traces;
mod without_worker;
