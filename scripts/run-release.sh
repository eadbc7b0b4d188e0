#!/usr/bin/env bash
# `make bench`, `make soak` and `make chaos`: builds OrderFlow and one test-bed program in release,
# with PostgreSQL and the Temporal CLI made ready, then runs that program with the rest of the
# arguments (each run starts a Temporal dev server and a database of its own), e.g.
#   bash scripts/run-release.sh orderflow-bench --seconds 30 --concurrency 128
#   bash scripts/run-release.sh orderflow-chaos --orders 5000 --seed 42
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
[ $# -ge 1 ] || die "usage: scripts/run-release.sh <orderflow-bench|orderflow-chaos> [options]"
bin="$1"
shift
ensure_postgres
ensure_temporal_cli
cd "$ROOT"
export_database_url
say "building OrderFlow and $bin (release)"
cargo build --quiet --release --bin orderflow --bin "$bin"
exec "./target/release/$bin" "$@"
