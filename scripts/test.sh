#!/usr/bin/env bash
# `make test`: everything needed, then the whole test suite against real PostgreSQL and Temporal.
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
bootstrap
cd "$ROOT"
if [ -z "${DATABASE_URL:-}" ]; then
  export DATABASE_URL="postgres://$POSTGRES_USER:$POSTGRES_PASSWORD@$POSTGRES_HOST:$POSTGRES_PORT/$POSTGRES_DB"
fi
say "running the test suite"
cargo test --workspace --all-targets --no-fail-fast "$@"
