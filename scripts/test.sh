#!/usr/bin/env bash
# `make test`: the house rules (rustfmt; clippy with warnings as errors, while the suite is
# built), then everything needed, then the whole test suite against real PostgreSQL and Temporal.
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
cd "$ROOT"
say "checking formatting (cargo fmt --check)"
cargo fmt --all -- --check || die "run \`make fmt\`"
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
# Clippy's lints, as errors, in the same compilation as the tests: clippy-driver wraps rustc for
# the workspace's own crates (what `cargo clippy` does, in a check build of its own), so the
# dependencies are compiled once instead of twice. Cold, that saves about a third of CI's time
# (docs/testing.md, "CI time"). `make lint` is the same lints alone.
CLIPPY_DRIVER="$(rustup which clippy-driver 2>/dev/null || command -v clippy-driver || true)"
[ -x "$CLIPPY_DRIVER" ] || die "clippy is needed (rustup component add clippy)"
export RUSTC_WORKSPACE_WRAPPER="$CLIPPY_DRIVER"
export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
say "building the suite with clippy's lints as errors, then running it"
# `--tests`: libraries, integration tests and the binaries they run (bins have no tests).
cargo test --workspace --tests --locked --no-fail-fast "$@"
