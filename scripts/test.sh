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
# A fresh clone has nothing to reuse: CI builds without the incremental cache's writes.
if [ "${CI:-}" = "true" ]; then export CARGO_INCREMENTAL=0; fi
export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
# With arguments (`make test ARGS=...` or `bash scripts/test.sh -p orderflow --test e2e`): just
# those, in one cargo run.
if [ $# -gt 0 ]; then
  say "running: cargo test $*"
  exec cargo test --locked --no-fail-fast "$@"
fi
say "building the suite with clippy's lints as errors"
# `--tests`: libraries, integration tests and the binaries they run (bins have no tests).
cargo test --workspace --tests --locked --no-run --message-format=json-render-diagnostics \
  >"$DATA/test-build.json" || die "the suite does not build (or clippy found something)"

# The two tests that run a cluster of processes (the small chaos run, the benchmark's smoke
# run) take minutes of mostly waiting each; they run beside the rest of the suite rather than
# after it (docs/testing.md, "CI time"). Their binaries are run directly: a second `cargo test`
# would wait for the first one's lock on the build directory.
CLUSTER_TESTS=(invariants_hold_under_faults the_benchmark_runs_every_phase_and_writes_its_results)
cluster_binaries=$(python3 - "$DATA/test-build.json" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    unit = json.loads(line)
    if unit.get("reason") == "compiler-artifact" and unit.get("executable") \
            and unit["target"]["name"] in ("chaos", "bench") and unit["profile"]["test"]:
        print(unit["executable"])
PY
)
[ "$(wc -w <<<"$cluster_binaries")" -eq 2 ] || die "the chaos and bench test binaries were not built"
say "running the cluster tests (chaos, bench) beside the rest; their output: .data/cluster-tests.log"
(
  cd crates/orderflow
  status=0
  for binary in $cluster_binaries; do "$binary" --nocapture || status=1; done
  exit $status
) >"$DATA/cluster-tests.log" 2>&1 &
cluster_pid=$!
say "running the test suite"
suite=0
cargo test --workspace --tests --locked --no-fail-fast -- \
  $(printf -- '--skip %s ' "${CLUSTER_TESTS[@]}") || suite=$?
cluster=0
wait "$cluster_pid" || cluster=$?
say "the cluster tests (chaos, bench):"
cat "$DATA/cluster-tests.log"
[ "$cluster" -eq 0 ] || die "a cluster test failed (above)"
[ "$suite" -eq 0 ] || die "the test suite failed"
say "every test passed"
