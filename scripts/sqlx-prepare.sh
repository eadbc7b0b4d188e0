#!/usr/bin/env bash
# `make sqlx-prepare`: regenerates the compile-time query cache (.sqlx/) from a scratch database
# built from the migrations, like `cargo sqlx prepare` without installing sqlx-cli. Run it after
# changing a query or a migration, and commit .sqlx/.
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
ensure_postgres
cd "$ROOT"
command -v psql >/dev/null 2>&1 || die "psql is needed (apt-get install postgresql-client)"
SCRATCH="orderflow_sqlx_prepare"
export PGPASSWORD="$POSTGRES_PASSWORD"
psql_do() { psql -q -v ON_ERROR_STOP=1 -h "$POSTGRES_HOST" -p "$POSTGRES_PORT" -U "$POSTGRES_USER" "$@"; }
say "building the schema in the scratch database $SCRATCH"
psql_do -d postgres -c "DROP DATABASE IF EXISTS $SCRATCH" -c "CREATE DATABASE $SCRATCH"
# OrderFlow's schema, and the simulated payment provider's ledger (a database of its own in
# production; its table names do not clash, so one scratch database checks both).
for migration in crates/store/migrations/*.sql crates/psp/schema.sql; do
  psql_do -d "$SCRATCH" -f "$migration" >/dev/null
done
say "checking every query against it and writing .sqlx/"
rm -rf .sqlx && mkdir .sqlx
# The macros only run when their crate is compiled: make cargo recompile the crates using them.
grep -rl --include='*.rs' 'sqlx::query[_a-z]*!' crates | xargs touch
SQLX_OFFLINE=false SQLX_OFFLINE_DIR="$ROOT/.sqlx" \
  DATABASE_URL="postgres://$POSTGRES_USER:$POSTGRES_PASSWORD@$POSTGRES_HOST:$POSTGRES_PORT/$SCRATCH" \
  cargo check --quiet --workspace --all-targets --all-features
psql_do -d postgres -c "DROP DATABASE $SCRATCH"
say "$(ls .sqlx | wc -l) queries cached in .sqlx/"
