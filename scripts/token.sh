#!/usr/bin/env bash
# `make token SUB=<customer> [ROLE=operator]`: a bearer token for `AUTH_MODE=jwt make dev`,
# signed with the development secret that `make dev` keeps in .data/ (or with
# JWT_HS256_SECRET when it is set), valid for an hour. Prints the token only.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SECRET_FILE="$ROOT/.data/dev-jwt-secret"
if [ -z "${JWT_HS256_SECRET:-}" ]; then
  [ -s "$SECRET_FILE" ] || {
    echo "no development secret yet: run \`AUTH_MODE=jwt make dev\` first (it writes $SECRET_FILE)" >&2
    exit 1
  }
  JWT_HS256_SECRET="$(cat "$SECRET_FILE")"
fi
BIN="$ROOT/target/debug/orderflow"
[ -x "$BIN" ] || { echo "build it first: make dev (or cargo build --bin orderflow)" >&2; exit 1; }
args=(token --sub "$1")
[ -n "${2:-}" ] && args+=(--role "$2")
JWT_HS256_SECRET="$JWT_HS256_SECRET" exec "$BIN" "${args[@]}"
