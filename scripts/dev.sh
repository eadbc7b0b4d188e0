#!/usr/bin/env bash
# `make dev`: everything needed, then OrderFlow (HTTP API + worker) in the foreground, with the
# simulated payment provider (`orderflow psp`) beside it in the background.
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
bootstrap
cd "$ROOT"
say "building OrderFlow"
cargo build --quiet --bin orderflow
say "creating the database if missing, applying migrations, loading the demo catalog"
./target/debug/orderflow migrate --demo-catalog

# With AUTH_MODE=jwt and no secret given, a development secret of this checkout, kept in .data/
# (made once, random): `make token SUB=...` signs tokens with it in another terminal.
if [ "${AUTH_MODE:-off}" = "jwt" ] && [ -z "${JWT_HS256_SECRET:-}" ] && [ -z "${JWT_JWKS_URL:-}" ]; then
  if [ ! -s "$DATA/dev-jwt-secret" ]; then
    (umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$DATA/dev-jwt-secret")
  fi
  JWT_HS256_SECRET="$(cat "$DATA/dev-jwt-secret")"
  export JWT_HS256_SECRET
  say "AUTH_MODE=jwt with the development secret in .data/dev-jwt-secret: make token SUB=customer-001"
fi

# The provider and OrderFlow share the webhook secret; a development value unless one is set.
export PAYMENT_WEBHOOK_SECRET="${PAYMENT_WEBHOOK_SECRET:-whsec_development_only_not_a_secret}"
PSP_PORT="${PSP_PORT:-8090}"
export PAYMENT_PROVIDER_URL="${PAYMENT_PROVIDER_URL:-http://localhost:$PSP_PORT}"
# The dashboard plays the customer's bank app: confirm or refuse a payment that awaits them.
export DASHBOARD_PAYMENT_SIMULATOR="${DASHBOARD_PAYMENT_SIMULATOR:-true}"
# Every client here (the browser, curl, the provider's webhooks) is localhost: one client.
export HTTP_MAX_CONNECTIONS_PER_CLIENT="${HTTP_MAX_CONNECTIONS_PER_CLIENT:-1024}"
say "payment provider simulator on http://localhost:$PSP_PORT (log: $DATA/psp.log)"
PSP_PORT="$PSP_PORT" \
  PSP_WEBHOOK_URL="${PSP_WEBHOOK_URL:-http://localhost:${HTTP_PORT:-8080}/api/webhooks/payments}" \
  ./target/debug/orderflow psp >"$DATA/psp.log" 2>&1 &
PSP_PID=$!
trap 'kill $PSP_PID 2>/dev/null' EXIT

say "OrderFlow on http://localhost:${HTTP_PORT:-8080} (Ctrl-C stops it; Temporal UI: http://localhost:$TEMPORAL_UI_PORT)"
# Ctrl-C stops the service, which shuts down cleanly: that is how `make dev` ends, not an error.
trap 'kill $PSP_PID 2>/dev/null; exit 0' INT
./target/debug/orderflow serve 2>&1 | tee "$DATA/orderflow.log"
