#!/usr/bin/env bash
# make run: build, provision PostgreSQL, migrate, seed demo data, serve on :8080.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
if [ -n "${DATABASE_URL:-}" ] || [ -n "${COMMERCE__DATABASE__URL:-}" ]; then
  app_url=${COMMERCE__DATABASE__URL:-$DATABASE_URL}
else
  server=$(scripts/db.sh)
  app_url=$(scripts/ensure-db.sh "$server" "commerce_$COMMERCE_DB_TAG")
fi
export COMMERCE__DATABASE__URL="$app_url"
echo "== building"
cargo build -p commerce-api
bin=target/debug/commerce-api
$bin migrate
$bin seed
admin=$($bin token --admin)
user=$($bin token --user 1)
port=${COMMERCE__SERVER__PORT:-8080}
cat <<MSG

  commerce is starting on http://127.0.0.1:$port
  API docs (Swagger UI):  http://127.0.0.1:$port/docs/
  OpenAPI document:       http://127.0.0.1:$port/api-docs/openapi.json

  Tokens (24 h; make more with: $bin token --user ID | --admin):
    ADMIN=$admin
    USER1=$user

  Try:
    curl -s http://127.0.0.1:$port/api/v1/products
    curl -s -H "Authorization: Bearer \$USER1" http://127.0.0.1:$port/api/v1/users/1/balance
    curl -s -X POST -H "Authorization: Bearer \$USER1" -H 'Content-Type: application/json' \\
         -d '{"amount": 50000, "payment_method": "card"}' http://127.0.0.1:$port/api/v1/users/1/balance/charges

MSG
# A stand-in data platform (default :9090, SINK_PORT to change) that verifies each
# delivery's Standard Webhooks signature and prints the event, unless a platform is
# configured. Both sides get one signing secret (COMMERCE__DATA_PLATFORM__SIGNING_SECRETS
# if set, else a fresh one). The sink stops when the server does.
if [ -z "${COMMERCE__DATA_PLATFORM__URL:-}" ]; then
  sink_port=${SINK_PORT:-9090}
  if (exec 3<>"/dev/tcp/127.0.0.1/$sink_port") 2>/dev/null; then
    echo "make run: port $sink_port is taken, so the sink (the stand-in data platform) cannot start there;" >&2
    echo "          stop what listens on it, or choose another: SINK_PORT=9191 make run" >&2
    exit 1
  fi
  secrets=${COMMERCE__DATA_PLATFORM__SIGNING_SECRETS:-whsec_$(head -c 24 /dev/urandom | base64)}
  export COMMERCE__DATA_PLATFORM__SIGNING_SECRETS="$secrets"
  sink_args=()
  IFS=',' read -ra secret_list <<< "$secrets"
  for s in "${secret_list[@]}"; do sink_args+=(--secret "$(echo "$s" | tr -d ' ')"); done
  $bin sink --port "$sink_port" "${sink_args[@]}" &
  sink_pid=$!
  trap 'kill "$sink_pid" 2>/dev/null || true' EXIT
  sleep 0.3
  if ! kill -0 "$sink_pid" 2>/dev/null; then
    echo "make run: the sink did not start on port $sink_port (see above)" >&2
    exit 1
  fi
  export COMMERCE__DATA_PLATFORM__URL=http://127.0.0.1:$sink_port
  cat <<MSG
  Data platform: deliveries go to the sink at $COMMERCE__DATA_PLATFORM__URL/events, signed
  with the secret below; the sink checks each signature and prints every event it
  accepts in this terminal (lines starting "sink:"). Pay an order to see one:
    COMMERCE__DATA_PLATFORM__SIGNING_SECRETS=$secrets
  Deliveries and their attempts: curl -s -H "Authorization: Bearer \$ADMIN" http://127.0.0.1:$port/api/v1/admin/outbox

MSG
fi
# The server runs as a child (not exec) so the sink can be stopped after it; Ctrl-C or
# SIGTERM is passed on to it and it shuts down gracefully.
$bin serve &
server_pid=$!
trap 'kill -TERM "$server_pid" 2>/dev/null || true' INT TERM
status=0
wait "$server_pid" || status=$?
# a trapped signal interrupts the first wait; wait for the graceful shutdown itself
if kill -0 "$server_pid" 2>/dev/null; then
  status=0
  wait "$server_pid" || status=$?
fi
exit "$status"
