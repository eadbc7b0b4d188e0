#!/usr/bin/env bash
# `make chaos`: the big chaos run (release build). Options go to orderflow-chaos, e.g.
#   make chaos ARGS="--orders 5000 --seed 42 --faults kill-worker=8,pause-worker=3"
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
ensure_postgres
ensure_temporal_cli
cd "$ROOT"
export_database_url
say "building OrderFlow and the chaos runner (release)"
cargo build --quiet --release --bin orderflow --bin orderflow-chaos
exec ./target/release/orderflow-chaos "$@"
