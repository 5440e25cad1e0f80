#!/usr/bin/env bash
# make bench: speed goals, measured (not asserted in tests).
#  1. popular products on 1,000,000 order lines (EXPLAIN ANALYZE, median of 5 runs)
#  2. HTTP throughput and latency of pay_now orders and of reads (wrk, if installed)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
mkdir -p .data
server=$(scripts/db.sh)
db=commerce_bench_$COMMERCE_DB_TAG
url=$(fresh_db "$server" "$db")
export COMMERCE__DATABASE__URL="$url"
cargo build -q --release -p commerce-api
bin=target/release/commerce-api
$bin migrate >/dev/null

echo "== generating 1,000 products, 200,000 orders, 1,000,000 order lines"
psql "$url" -q -v ON_ERROR_STOP=1 <<'SQL'
INSERT INTO products (name, price, stock, created_at, updated_at)
SELECT 'bench product ' || g, 1000 + g, 1000000000, now(), now() FROM generate_series(1, 1000) g;
-- 70% paid over the last 60 days, 10% cancelled after payment, 20% pending
INSERT INTO orders (user_id, status, subtotal, discount, total, created_at, expires_at, paid_at, cancelled_at, cancel_reason)
SELECT 1 + g % 5000,
       CASE WHEN g % 10 < 7 THEN 'PAID' WHEN g % 10 = 7 THEN 'CANCELLED' ELSE 'PENDING' END,
       0, 0, 0,
       now() - (g % 86400) * interval '1 minute',
       now() + interval '15 minutes',
       CASE WHEN g % 10 < 8 THEN now() - (g % 86400) * interval '1 minute' END,
       CASE WHEN g % 10 = 7 THEN now() END,
       CASE WHEN g % 10 = 7 THEN 'USER_REQUEST' END
  FROM generate_series(1, 200000) g;
INSERT INTO order_lines (order_id, line_no, product_id, name, unit_price, quantity, subtotal)
SELECT o.id, k, ((o.id * 7 + k * 131) % 1000) + 1, 'bench', 1000, 1 + (o.id + k) % 3, 1000 * (1 + (o.id + k) % 3)
  FROM orders o CROSS JOIN generate_series(1, 5) k;
INSERT INTO product_sales (order_id, product_id, quantity, paid_at)
SELECT l.order_id, l.product_id, l.quantity, o.paid_at
  FROM orders o JOIN order_lines l ON l.order_id = o.id WHERE o.status = 'PAID';
VACUUM ANALYZE;
SQL
# the statement of PgOrderStore::best_sellers
query="SELECT p.id, p.name, p.price, p.stock, p.created_at, s.sold
  FROM (SELECT product_id, SUM(quantity)::BIGINT AS sold FROM product_sales
         WHERE paid_at >= now() - make_interval(days => DAYS)
         GROUP BY product_id ORDER BY sold DESC, product_id ASC LIMIT 5) s
  JOIN products p ON p.id = s.product_id ORDER BY s.sold DESC, p.id ASC"
for days in 3 30; do
  times=()
  for _ in 1 2 3 4 5; do
    t=$(psql "$url" -tAc "EXPLAIN (ANALYZE, FORMAT JSON) ${query//DAYS/$days}" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["Execution Time"])')
    times+=("$t")
  done
  median=$(printf '%s\n' "${times[@]}" | sort -n | sed -n 3p)
  echo "popular products, days=$days (1,000,000 order lines, 700,000 sold): median ${median} ms (runs: ${times[*]})"
done

if ! command -v wrk >/dev/null 2>&1; then
  echo "(wrk not installed: skipping HTTP throughput; Debian: apt-get install wrk)"
  exit 0
fi
port=18082
export COMMERCE__SERVER__PORT=$port COMMERCE__DATA_PLATFORM__URL=""
trap stop_server EXIT
RUST_LOG=error start_server $bin .data/bench-server.log
token=$($bin token --user 1)
for _ in $(seq 1 100); do
  curl -fs -X POST -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    -d '{"amount": 10000000, "payment_method": "card"}' "http://127.0.0.1:$port/api/v1/users/1/balance/charges" >/dev/null
done
cat > .data/bench-order.lua <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $token"
counter = 0
request = function()
  counter = counter + 1
  local p = (counter % 1000) + 1
  return wrk.format(nil, nil, nil, '{"user_id": 1, "items": [{"product_id": ' .. p .. ', "quantity": 1}], "pay_now": true}')
end
LUA
echo "== pay_now orders (place + pay in one transaction), 2 threads, 16 connections, 10 s"
wrk -t2 -c16 -d10s --latency -s .data/bench-order.lua "http://127.0.0.1:$port/api/v1/orders" | grep -E "Requests/sec|50%|99%|Non-2xx"
echo "== GET /api/v1/products/popular?days=30, 2 threads, 16 connections, 10 s"
wrk -t2 -c16 -d10s --latency "http://127.0.0.1:$port/api/v1/products/popular?days=30" | grep -E "Requests/sec|50%|99%|Non-2xx"
