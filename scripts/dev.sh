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
./target/debug/orderflow serve 2>&1 | tee "$DATA/orderflow.log"
