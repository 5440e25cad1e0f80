#!/usr/bin/env bash
# make run: build, provision PostgreSQL, migrate, seed demo data, serve on :8080.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${DATABASE_URL:-}" ] || [ -n "${COMMERCE__DATABASE__URL:-}" ]; then
  app_url=${COMMERCE__DATABASE__URL:-$DATABASE_URL}
else
  server=$(scripts/db.sh)
  app_url=$(scripts/ensure-db.sh "$server" commerce)
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
exec $bin serve
