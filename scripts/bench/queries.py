#!/usr/bin/env python3
"""Times the read queries of `make bench` with EXPLAIN (ANALYZE), median of 5.

usage: queries.py search DB_URL RESULTS.jsonl [BASE_URL ADMIN_TOKEN]
       queries.py popular DB_URL RESULTS.jsonl

search (issue 13): for each filter of GET /api/v1/admin/orders, the two statements a
page costs, as the store sends them: PgOrderStore::search's id query (diesel builds it:
written out here by hand, as log_statement shows it, with the values in place of the
$n parameters; a boxed query is prepared anew for each request, so PostgreSQL plans it
with the values, as here) and
ReadOrders (read from order.rs) for the ids it returns. Page time = planning +
execution of both. The plan "uses an index" when no node is a Seq Scan on orders.
With BASE_URL, also the whole HTTP request (curl, median of 5).

popular: PgOrderStore::best_sellers (read from order.rs), days=3 and days=30.
"""

import json
import os
import statistics
import subprocess
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pgbench_scripts  # noqa: E402
import rust_sql  # noqa: E402

RUNS = 5
PAGE = 20  # the default ?limit; the store fetches limit + 1 rows


def psql(url, sql):
    out = subprocess.run(["psql", url, "-XtAq", "-v", "ON_ERROR_STOP=1", "-c", sql],
                         check=True, capture_output=True, text=True).stdout
    return out.strip()


def explain(url, sql, runs=RUNS):
    """`runs` plans of EXPLAIN ANALYZE of sql, in ONE session after a warm-up run (the
    server's pooled connections have their catalog caches warm; a new session's first
    plan costs several ms more)."""
    one = "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql + ";\n"
    out = subprocess.run(["psql", url, "-XtAq", "-v", "ON_ERROR_STOP=1"], input=one * (runs + 1),
                         check=True, capture_output=True, text=True).stdout
    plans, at, dec = [], 0, json.JSONDecoder()
    while True:
        while at < len(out) and out[at].isspace():
            at += 1
        if at >= len(out):
            break
        doc, at = dec.raw_decode(out, at)
        plans.append(doc[0])
    return plans[1:]


def nodes(plan):
    yield plan
    for child in plan.get("Plans", []):
        yield from nodes(child)


def describe(plan):
    """Seq Scans on orders, and the indexes the plan used on orders."""
    seq, used = False, []
    for n in nodes(plan["Plan"]):
        if n.get("Relation Name") == "orders":
            if n["Node Type"] == "Seq Scan":
                seq = True
            elif n.get("Index Name"):
                used.append(f"{n['Node Type']} {n['Index Name']}")
            elif n["Node Type"].startswith("Bitmap Heap"):
                pass
        if n["Node Type"] == "Bitmap Index Scan" and n.get("Index Name", "").startswith("orders"):
            used.append(f"Bitmap {n['Index Name']}")
    return seq, used


def search_sql(filters):
    """PgOrderStore::search: SELECT orders.id ... ORDER BY id DESC (created_at DESC, id DESC
    with a created range) LIMIT limit+1."""
    where = []
    if "status" in filters:
        where.append(f"\"orders\".\"status\" = '{filters['status']}'")
    if "user_id" in filters:
        where.append(f"\"orders\".\"user_id\" = {int(filters['user_id'])}")
    if "created_from" in filters:
        where.append(f"\"orders\".\"created_at\" >= '{filters['created_from']}'::timestamptz")
    if "created_to" in filters:
        where.append(f"\"orders\".\"created_at\" < '{filters['created_to']}'::timestamptz")
    sql = 'SELECT "orders"."id" FROM "orders"'
    if where:
        sql += " WHERE " + " AND ".join(f"({w})" for w in where)
    if "created_from" in filters or "created_to" in filters:
        # a created range runs in creation-time order (OrderStore::search)
        return sql + f' ORDER BY "orders"."created_at" DESC, "orders"."id" DESC LIMIT {PAGE + 1}'
    return sql + f' ORDER BY "orders"."id" DESC LIMIT {PAGE + 1}'


def timed(url, sql):
    """The median run (planning + execution, ms) and its plan."""
    runs = sorted(((p["Planning Time"] + p["Execution Time"], p) for p in explain(url, sql)),
                  key=lambda r: r[0])
    return runs[len(runs) // 2]


def http_ms(base, token, query):
    times = []
    for _ in range(RUNS):
        out = subprocess.run(
            ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{time_total}",
             "-H", f"Authorization: Bearer {token}", f"{base}/api/v1/admin/orders?{query}"],
            check=True, capture_output=True, text=True).stdout.split()
        if out[0] != "200":
            return None
        times.append(float(out[1]) * 1000)
    return statistics.median(times)


def search(url, results, base=None, token=None):
    read_orders = rust_sql.read_source(pgbench_scripts.ORDER_RS)["ReadOrders"]
    # the generated orders span the last 60 days (bench.sh); ranges relative to now
    now = psql(url, "SELECT date_trunc('second', now())")
    day = lambda n: psql(url, f"SELECT to_char(('{now}'::timestamptz - interval '{n} days') "
                              "AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')")
    user = 4242
    filters = [
        ("none", {}),
        ("status", {"status": "CANCELLED"}),
        ("user_id", {"user_id": user}),
        ("created range (1 day, a month ago)", {"created_from": day(31), "created_to": day(30)}),
        ("status + created range (1 day)",
         {"status": "CANCELLED", "created_from": day(31), "created_to": day(30)}),
        ("user_id + status + created range (30 days)",
         {"user_id": user, "status": "PAID", "created_from": day(45), "created_to": day(15)}),
    ]
    for name, f in filters:
        sql = search_sql(f)
        s_ms, s_plan = timed(url, sql)
        ids = [int(x) for x in psql(url, sql).split()]
        read = read_orders.replace("$ids", "'{" + ",".join(map(str, ids)) + "}'::int8[]")
        r_ms, r_plan = timed(url, read)
        seq1, used1 = describe(s_plan)
        seq2, used2 = describe(r_plan)
        query = urllib.parse.urlencode(f)
        rec = {
            "section": "search", "filter": name, "query": urllib.parse.unquote(query) or "(none)",
            "search_ms": s_ms, "read_ms": r_ms, "total_ms": s_ms + r_ms, "rows": len(ids),
            "no_seq_scan": not (seq1 or seq2),
            "plan": ", ".join(dict.fromkeys(used1)) + ("; Seq Scan on orders" if seq1 or seq2 else ""),
        }
        if base:
            rec["http_ms"] = http_ms(base, token, query)
        with open(results, "a") as out:
            out.write(json.dumps(rec) + "\n")
        print(f"   {name}: page {rec['total_ms']:.2f} ms ({rec['plan']})", flush=True)


def popular(url, results):
    count = psql(url, "SELECT count(*) FROM order_lines") + " order lines, " + \
        psql(url, "SELECT count(*) FROM product_sales") + " sold"
    sql = pgbench_scripts.best_sellers_sql()
    for days in (3, 30):
        q = sql.replace("$1", f"now() - make_interval(days => {days})").replace("$2", "5")
        runs = [p["Execution Time"] for p in explain(url, q)]
        rec = {"section": "popular", "days": days, "data": count,
               "median_ms": statistics.median(runs), "runs": runs}
        with open(results, "a") as out:
            out.write(json.dumps(rec) + "\n")
        print(f"   popular products, days={days}: median {rec['median_ms']:.1f} ms", flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "search":
        search(*sys.argv[2:])
    elif sys.argv[1] == "popular":
        popular(*sys.argv[2:])
    else:
        sys.exit(__doc__)
