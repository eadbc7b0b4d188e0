#!/usr/bin/env bash
# `make bench` and `make soak`: the benchmark (release build) with its own Temporal dev server
# and database. Options go to orderflow-bench, e.g. make bench ARGS="--seconds 30 --concurrency 128".
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
ensure_postgres
ensure_temporal_cli
cd "$ROOT"
export_database_url
say "building OrderFlow and the benchmark (release)"
cargo build --quiet --release --bin orderflow --bin orderflow-bench
exec ./target/release/orderflow-bench "$@"
