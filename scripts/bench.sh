#!/usr/bin/env bash
# make bench: the speed goals of issues 10, 11 and 13, measured (never asserted in tests).
#
# One run prints a table (also .data/bench-report.md) where every HTTP figure (wrk
# against the release server) stands beside pgbench running the SAME business
# transaction straight on the same database, back to back: the machine is shared and
# noisy, so the RATIO is what to read. Scenarios:
#   1. pay-now orders spread over 1,000 products       (issue 10)  8 and 32 connections
#   2. pay-now orders all for ONE product              (issue 11)  8 and 32
#   3. FCFS issuing of ONE coupon, every user new      (issue 11)  8 and 32
#   4. admin order search on 1,000,000 orders, per filter (issue 13, EXPLAIN ANALYZE)
#   5. popular products on 1,000,000 order lines (EXPLAIN ANALYZE, and wrk beside pgbench)
# Per row: throughput of both, ratio, p50/p99, CPU µs per transaction of the server
# process and of PostgreSQL (from /proc, see scripts/bench/measure.py), load generator
# CPU, server RSS, how busy other users kept the machine. Then PASS/MISS per target.
# How to read it: docs/operations.md, "Benchmarks".
#
# Settings (environment): BENCH_SECONDS (15) per run; BENCH_CONNS ("8 32");
# BENCH_COUPON_USERS (100000) distinct users minted per coupon run.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
secs=${BENCH_SECONDS:-15}
conns_list=${BENCH_CONNS:-8 32}
coupon_users=${BENCH_COUPON_USERS:-100000}
order_users=10000   # users 1..10,000 have a balance (scripts/bench/data.sql)
dir=.data/bench
report=.data/bench-report.md
results=$dir/results.jsonl
rm -rf "$dir" && mkdir -p "$dir"
: > "$results"
note() { python3 scripts/bench/report.py note "$results" "$@"; echo "   note: $*"; }

# --- tools: say what is missing, run what we can --------------------------------------
have_wrk=1 have_pgbench=1
command -v wrk >/dev/null 2>&1 || {
  have_wrk=0
  echo "!! wrk is not installed: the HTTP side is skipped (Debian/Ubuntu: apt-get install wrk; macOS: brew install wrk)"
}
command -v pgbench >/dev/null 2>&1 || {
  have_pgbench=0
  echo "!! pgbench is not installed: the PostgreSQL side is skipped (Debian/Ubuntu: it comes with the server, apt-get install postgresql; macOS: brew install postgresql@16)"
}
command -v python3 >/dev/null 2>&1 || { echo "make bench needs python3 (report, CPU sampling)"; exit 1; }
[ -r /proc/self/stat ] || echo "!! no /proc: CPU and RSS figures will be missing"

# --- the server binary and the database --------------------------------------------
echo "== building the release server"
cargo build -q --release -p commerce-api
bin=target/release/commerce-api
server=$(scripts/db.sh)
db=commerce_bench_$COMMERCE_DB_TAG
url=$(fresh_db "$server" "$db")
export COMMERCE__DATABASE__URL="$url"
$bin migrate >/dev/null

echo "== generating 1,000 products, 1,000,000 orders and order lines, 10,000 buyers, 2 coupons"
t0=$(date +%s)
psql "$url" -q -v ON_ERROR_STOP=1 -f scripts/bench/data.sql
echo "   ($(( $(date +%s) - t0 )) s)"
[ "$(psql "$url" -tAc 'SELECT count(*) FROM products WHERE price <> 1000 + id')" = 0 ] \
  || { echo "products do not cost 1000 + id: the pgbench order script would misprice"; exit 1; }
read -r http_coupon pg_coupon <<<"$(psql "$url" -tAc "SELECT string_agg(id::text, ' ' ORDER BY id) FROM coupons")"

echo "== popular products (EXPLAIN ANALYZE of PgOrderStore::best_sellers, median of 5)"
python3 scripts/bench/queries.py popular "$url" "$results"

# --- the pgbench scripts: our SQL, read from the Rust sources ----------------------------
echo "== writing the pgbench scripts from the Rust SQL"
pay_now=$dir/pay_now.sql
if ! python3 scripts/bench/pgbench_scripts.py pay-now "$pay_now"; then
  pay_now=scripts/bench/pay_now_single_row.sql
  note "order.rs has SQL the pgbench translation does not know yet (see above): the spread pgbench side ran the frozen pre-slot copy instead"
fi
# the single-row figure of issue 11: the pay-now SQL as it was before stock slots
single_row=scripts/bench/pay_now_single_row.sql
cmp -s <(grep -v '^--' "$pay_now") <(grep -v '^--' "$single_row") \
  || note "the pay-now SQL of order.rs differs from the frozen single-row copy (scripts/bench/pay_now_single_row.sql): expected once stock slots land"
python3 scripts/bench/pgbench_scripts.py coupon-issue "$dir/coupon_issue.sql" \
  || note "coupon.rs has SQL the pgbench translation does not know (see above)"
python3 scripts/bench/pgbench_scripts.py best-sellers "$dir/best_sellers.sql"

# --- the server ------------------------------------------------------------------------
port=18082
export COMMERCE__SERVER__PORT=$port COMMERCE__DATA_PLATFORM__URL=""
export COMMERCE__AUTH__JWT_SECRET=make-bench-secret-not-for-production
trap stop_server EXIT
RUST_LOG=error start_server $bin "$dir/server.log"
base="http://127.0.0.1:$port"
admin=$($bin token --admin)
template=$($bin token --user 1)

echo "== minting tokens: $order_users buyers, ${coupon_users} coupon users per run"
python3 scripts/bench/tokens.py "$template" "$COMMERCE__AUTH__JWT_SECRET" 1 $order_users > "$dir/buyers.txt"
check_token=$(sed -n 2p "$dir/buyers.txt" | cut -d' ' -f2)
curl -fs -o /dev/null -H "Authorization: Bearer $check_token" "$base/api/v1/users/2/balance" \
  || { echo "the server refuses the minted tokens (scripts/bench/tokens.py)"; exit 1; }

show() {  # the row just added, as a progress line
  python3 - "$results" <<'PY'
import json, sys
r = json.loads(open(sys.argv[1]).read().splitlines()[-1])
if "failed" in r: print(f"   {r['scenario']} {r['conns']} {r['side']}: FAILED {r['failed']}")
elif "rate" in r: print(f"   {r['scenario']} {r['conns']} {r['side']}: {r['rate']:,.0f}/s p99 {r['p99_ms'] or 0:.1f} ms")
PY
}

# run_http SCENARIO CONNS LUA [URL]: wrk for $secs, measured (environment: BENCH_*)
run_http() {
  [ $have_wrk = 1 ] || return 0
  local name=$1 c=$2 lua=$3 path=${4:-/}
  psql "$url" -qc CHECKPOINT
  python3 scripts/bench/measure.py --db "$db" --server-pid "$server_pid" --out "$dir/$name-$c-http.json" -- \
    wrk -t"$BENCH_THREADS" -c"$c" -d"${secs}s" --timeout 10s -s "scripts/bench/wrk/$lua" "$base$path"
  python3 scripts/bench/report.py add "$results" "$name" "$c" http "$dir/$name-$c-http.json"
  show
}

# run_pgbench SCENARIO CONNS CLIENTS SCRIPT -D...: pgbench -M prepared, CLIENTS
# connections, for $secs, measured, shown in the row of CONNS
run_pgbench() {
  [ $have_pgbench = 1 ] || return 0
  local name=$1 c=$2 clients=$3 script=$4; shift 4
  local defines=()
  if [ -f "$script.defines" ]; then
    while IFS= read -r d; do defines+=(-D "$d"); done < "$script.defines"
  fi
  psql "$url" -qc CHECKPOINT
  python3 scripts/bench/measure.py --db "$db" --warmup 2 --out "$dir/$name-$c-pgbench.json" -- \
    pgbench -n -M prepared -c "$clients" -j 2 -T "$secs" -l --log-prefix="$dir/$name-$c-pglog" \
      -D n=0 -D nclients="$clients" "${defines[@]}" "$@" -f "$script" "$url"
  python3 scripts/bench/report.py add "$results" "$name" "$c" pgbench "$dir/$name-$c-pgbench.json" "$dir/$name-$c-pglog" "$clients"
  show
}

# --- warm up: fills the pool and every connection's prepared statements -----------------
export BENCH_THREADS=2 BENCH_USERS=$dir/buyers.txt BENCH_FIRST_PRODUCT=1 BENCH_PRODUCTS=1000
if [ $have_wrk = 1 ]; then
  wrk -t"$BENCH_THREADS" -c8 -d3s -s scripts/bench/wrk/orders.lua "$base/api/v1/orders" >/dev/null
fi
# a real order.paid body, for pgbench's outbox insert
payload=$(psql "$url" -tAc "SELECT payload::text FROM outbox_events ORDER BY id DESC LIMIT 1")
[ -n "$payload" ] || payload='{"event_id":"00000000-0000-4000-8000-000000000000","event_type":"order.paid","occurred_at":"2026-01-01T00:00:00Z","order":{}}'

echo "== admin order search on 1,000,000 orders (EXPLAIN ANALYZE, median of 5; HTTP with curl)"
python3 scripts/bench/queries.py search "$url" "$results" "$base" "$admin"

pg_now() { date -u +%Y-%m-%dT%H:%M:%SZ; }
pg_in15() { date -u -d '+15 minutes' +%Y-%m-%dT%H:%M:%SZ; }
order_defines() {  # -D values of the pay-now script, $1 = first product, $2 = products
  echo -D first_user=1 -D users=$order_users -D first_product="$1" -D products="$2" \
    -D p_now="$(pg_now)" -D p_expires="$(pg_in15)"
}

echo "== 1. pay-now orders spread over 1,000 products: wrk beside pgbench, ${secs}s each"
for c in $conns_list; do
  run_http spread "$c" orders.lua /api/v1/orders
  # shellcheck disable=SC2046
  run_pgbench spread "$c" "$c" "$pay_now" $(order_defines 1 1000) -D p_event_payload="$payload"
done

# The single-row figures (hot product, hot coupon) use as many pgbench connections as
# the server can have transactions at once: its pool (wrk's other connections wait in
# the server, holding no lock). 32 pgbench backends queued on one row cost more than
# 16 and would flatter the service.
pool=${COMMERCE__DATABASE__POOL_SIZE:-$(grep -m1 '^pool_size' config/default.toml | tr -dc 0-9)}
single_row_clients() { echo $(( $1 < pool ? $1 : pool )); }

# The frozen single-row scripts need the pre-slot columns: once stock and coupon units
# live in slot rows (issue 11), a temporary column stands in for each during those
# pgbench runs (added and dropped around them; the server does not read it).
column_missing() {  # TABLE COLUMN
  [ "$(psql "$url" -tAc "SELECT count(*) FROM information_schema.columns WHERE table_name = '$1' AND column_name = '$2'")" = 0 ]
}
stand_in=()  # "table column" pairs added for the single-row runs
single_row_on() {  # TABLE COLUMN
  if column_missing "$1" "$2"; then
    psql "$url" -qc "ALTER TABLE $1 ADD COLUMN $2 BIGINT NOT NULL DEFAULT $3"; stand_in=("$1 $2")
  fi
}
single_row_off() {
  local t
  for t in "${stand_in[@]}"; do psql "$url" -qc "ALTER TABLE ${t% *} DROP COLUMN ${t#* }"; done
  stand_in=()
}

echo "== 2. pay-now orders for ONE product: wrk beside pgbench's single-row figure"
export BENCH_PRODUCTS=1
for c in $conns_list; do
  run_http hot "$c" orders.lua /api/v1/orders
  single_row_on products stock 1000000000
  # shellcheck disable=SC2046
  run_pgbench hot "$c" "$(single_row_clients "$c")" "$single_row" $(order_defines 1 1) -D p_event_payload="$payload"
  single_row_off
done

echo "== 3. FCFS issuing of ONE coupon (every request a new user): wrk beside pgbench's single-row figure"
# the frozen pre-slot issue on one counter row; after coupon slots `coupons` is a view
# and the counter row is the coupon's coupon_definitions row
coupon_single_row=scripts/bench/coupon_issue_single_row.sql counter=coupons
if ! column_missing coupon_definitions id; then
  counter=coupon_definitions
  sed 's/UPDATE coupons$/UPDATE coupon_definitions/' "$coupon_single_row" > "$dir/coupon_issue_single_row.sql"
  coupon_single_row=$dir/coupon_issue_single_row.sql
fi
first=1000001
for c in $conns_list; do
  [ $have_wrk = 0 ] || python3 scripts/bench/tokens.py "$template" "$COMMERCE__AUTH__JWT_SECRET" "$first" "$coupon_users" > "$dir/coupon-users-$c.txt"
  BENCH_USERS=$dir/coupon-users-$c.txt BENCH_COUPON=$http_coupon run_http coupon "$c" coupon.lua
  first=$((first + coupon_users))
  single_row_on "$counter" issued_quantity 0
  run_pgbench coupon "$c" "$(single_row_clients "$c")" "$coupon_single_row" -D coupon="$pg_coupon" \
    -D first_user=$((50000000 + c * 1000000)) -D p_now="$(pg_now)"
  single_row_off
done
issued=$(psql "$url" -tAc "SELECT issued_quantity || '=' || (SELECT count(*) FROM user_coupons u WHERE u.coupon_id = c.id) FROM coupons c WHERE id = $http_coupon")
note "the HTTP coupon after the runs, issued_quantity=owners: $issued (must be equal)"

echo "== 5. GET /products/popular?days=30 beside pgbench, 16 connections"
run_http popular 16 get.lua "/api/v1/products/popular?days=30"
run_pgbench popular 16 16 "$dir/best_sellers.sql" -D p_limit=5 \
  -D p_since="$(date -u -d '-30 days' +%Y-%m-%dT%H:%M:%SZ)"

stop_server
note "server: release build, RUST_LOG=error, pool_size $pool, wrk -t2; pgbench -M prepared -j 2; ${secs}s per run; $(nproc) cores"
echo
python3 scripts/bench/report.py table "$results" "$report"
echo "(written to $report; raw runs in $dir/)"
