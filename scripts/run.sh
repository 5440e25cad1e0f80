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
# A stand-in data platform on :9090 that prints every event the outbox relay sends,
# unless a platform is configured. It stops when the server does.
if [ -z "${COMMERCE__DATA_PLATFORM__URL:-}" ]; then
  $bin sink --port 9090 &
  sink_pid=$!
  trap 'kill "$sink_pid" 2>/dev/null || true' EXIT
  export COMMERCE__DATA_PLATFORM__URL=http://127.0.0.1:9090
  echo "  data platform: the sink at $COMMERCE__DATA_PLATFORM__URL prints each delivered event"
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
