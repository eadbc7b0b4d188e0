#!/usr/bin/env bash
# `make test`: the house rules (rustfmt, clippy with warnings as errors), then everything needed,
# then the whole test suite against real PostgreSQL and Temporal.
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
cd "$ROOT"
say "checking formatting (cargo fmt --check) and lints (clippy -D warnings)"
cargo fmt --all -- --check || die "run \`make fmt\`"
cargo clippy --quiet --workspace --all-targets --locked -- -D warnings
bootstrap
ensure_schemathesis
ensure_deploy_validators
export_database_url
# The dashboard's browser test: Debian's Chromium and the pinned playwright-core from npm.
if ! command -v chromium >/dev/null 2>&1; then
  say "installing Chromium (Debian package) for the dashboard's browser test"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
command -v node >/dev/null 2>&1 || die "Node.js is needed for the dashboard's browser test (apt-get install nodejs npm)"
npm ci --silent --no-audit --no-fund --prefix crates/orderflow/tests/dashboard
say "running the test suite"
cargo test --workspace --all-targets --no-fail-fast "$@"
