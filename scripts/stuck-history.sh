#!/usr/bin/env bash
# How fast does the history of a stuck order grow? Places one order whose payment step cannot
# succeed (the `payments` table is renamed away first, a stand-in for a broken migration), then
# prints the workflow's history length once a minute. docs/architecture.md, "A step that cannot succeed", quotes
# what this prints. Usage: scripts/stuck-history.sh [minutes] (default 40); needs a built
# target/debug/orderflow (or ORDERFLOW_BIN) and uses its own database and task queue.
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
bootstrap >/dev/null
MINUTES="${1:-40}"
BIN="${ORDERFLOW_BIN:-$ROOT/target/debug/orderflow}"
PORT="${STUCK_HTTP_PORT:-18999}"
DB=orderflow_stuck_history
export DATABASE_URL="postgres://$POSTGRES_USER:$POSTGRES_PASSWORD@$POSTGRES_HOST:$POSTGRES_PORT/$DB"
export TEMPORAL_TASK_QUEUE="stuck-history-$$" HTTP_PORT="$PORT"
psql_do() { psql -q -h "$POSTGRES_HOST" -p "$POSTGRES_PORT" -U "$POSTGRES_USER" "$@"; }

psql_do -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)"
"$BIN" migrate --demo-catalog >/dev/null
psql_do -d "$DB" -c 'ALTER TABLE payments RENAME TO payments_away'
"$BIN" serve >"$DATA/stuck-history.log" 2>&1 &
SERVE=$!
trap 'kill $SERVE 2>/dev/null; wait $SERVE 2>/dev/null' EXIT
wait_for OrderFlow 127.0.0.1 "$PORT" 60 || die "OrderFlow did not start; see .data/stuck-history.log"

ID=$(curl -sS -X POST "http://127.0.0.1:$PORT/api/orders" -H 'Content-Type: application/json' \
  -d '{"customer_id":"customer-001","items":[{"product_id":"prod-001","name":"iPhone 15 Pro","quantity":1,"price":999.99}]}' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["workflow_id"])')
say "order $ID placed; its payment step cannot succeed"
printf 'minute\thistory_events\tstatus\n'
for ((m = 1; m <= MINUTES; m++)); do
  sleep 60
  events=$("$TEMPORAL_CLI" workflow show --address "$TEMPORAL_HOST:$TEMPORAL_PORT" -w "$ID" -o json |
    python3 -c 'import json,sys; print(len(json.load(sys.stdin)["events"]))')
  status=$(curl -sS "http://127.0.0.1:$PORT/api/orders/status?workflow_id=$ID" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')
  printf '%s\t%s\t%s\n' "$m" "$events" "$status"
done
psql_do -d "$DB" -c 'ALTER TABLE payments_away RENAME TO payments'
say "table restored; waiting for the order to finish by itself (up to 6 minutes: the longest backoff is 5)"
for _ in $(seq 1 72); do
  status=$(curl -sS "http://127.0.0.1:$PORT/api/orders/status?workflow_id=$ID" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')
  case "$status" in completed | failed | cancelled) break ;; esac
  sleep 5
done
events=$("$TEMPORAL_CLI" workflow show --address "$TEMPORAL_HOST:$TEMPORAL_PORT" -w "$ID" -o json |
  python3 -c 'import json,sys; print(len(json.load(sys.stdin)["events"]))')
say "final status: $status, history events: $events"
