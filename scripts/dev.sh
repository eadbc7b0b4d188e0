#!/usr/bin/env bash
# `make dev`: everything needed, then OrderFlow (HTTP API + worker) in the foreground.
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
bootstrap
cd "$ROOT"
say "building OrderFlow"
cargo build --quiet --bin orderflow
say "creating the database if missing, applying migrations, loading the demo catalog"
./target/debug/orderflow migrate --demo-catalog
say "OrderFlow on http://localhost:${HTTP_PORT:-8080} (Ctrl-C stops it; Temporal UI: http://localhost:$TEMPORAL_UI_PORT)"
./target/debug/orderflow serve 2>&1 | tee "$DATA/orderflow.log"
