#!/usr/bin/env bash
# make fuzz: contract fuzzing of the running server with schemathesis, against the
# server's own OpenAPI document: no 5xx, no response that breaks its documented schema.
# Uses a fresh database (commerce_fuzz, or $FUZZ_DB) and a private port ($FUZZ_PORT).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
mkdir -p .data
server=$(scripts/db.sh)
db=${FUZZ_DB:-commerce_fuzz_$COMMERCE_DB_TAG}
app_url=$(fresh_db "$server" "$db")
export COMMERCE__DATABASE__URL="$app_url"
export COMMERCE__SERVER__PORT=${FUZZ_PORT:-18080}
export COMMERCE__DATA_PLATFORM__URL=""
venv=.data/venv
if [ ! -x "$venv/bin/schemathesis" ]; then
  echo "== installing schemathesis into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q 'schemathesis==4.32.5'
fi
cargo build -q -p commerce-api
bin=target/debug/commerce-api
$bin migrate >/dev/null
$bin seed >/dev/null
trap stop_server EXIT
RUST_LOG=warn start_server $bin .data/fuzz-server.log
base="http://127.0.0.1:$COMMERCE__SERVER__PORT"
admin=$($bin token --admin)
echo "== schemathesis against $base/api-docs/openapi.json"
# The hooks seed state through the API (a user with a balance, a product, a coupon, PAID
# and PENDING orders) and point cases at it, so payment, cancel and refund paths are
# reached; they also make Idempotency-Keys fresh. See the hooks file.
export FUZZ_BASE="$base" FUZZ_ADMIN_TOKEN="$admin"
# One worker: two threads have crashed schemathesis itself once (a CPython 3.11 bug),
# and CI must not be flaky.
export SCHEMATHESIS_HOOKS=scripts/fuzz_hooks.py
"$venv/bin/schemathesis" run "$base/api-docs/openapi.json" \
  --header "Authorization: Bearer $admin" \
  --checks not_a_server_error,response_schema_conformance,content_type_conformance \
  --max-examples "${FUZZ_EXAMPLES:-30}" \
  --workers 1 \
  --seed 20261121 \
  --request-timeout 10 \
  "$@"
if grep -q "panicked" .data/fuzz-server.log; then
  echo "fuzz: the server panicked (see .data/fuzz-server.log)" >&2
  exit 1
fi
