//! End-to-end tests: the real service over HTTP, with real PostgreSQL and Temporal.

mod bad_input;
mod cancel;
mod concurrency;
mod fuzz;
mod idempotency;
mod orders;
mod support;
mod without_worker;
