#!/usr/bin/env python3
"""Collects the runs of `make bench` and prints the table (and .data/bench-report.md).

usage: report.py add RESULTS.jsonl SCENARIO CONNS SIDE MEASURE.json [PGBENCH_LOG_PREFIX [CLIENTS]]
       report.py note RESULTS.jsonl TEXT...            (a line printed under the table)
       report.py table RESULTS.jsonl REPORT.md

SIDE is "http" (wrk against the server) or "pgbench" (the same SQL, straight to
PostgreSQL). MEASURE.json is measure.py's; its .log holds the generator's output.

Every figure of a row is measured in that row's own runs, HTTP and pgbench back to
back on the same database, so the noise of this shared machine (other engineers
compiling: the "others" column) shows up in both and the RATIO is what to read.
"""

import glob
import json
import re
import sys


def percentile(sorted_values, p):
    if not sorted_values:
        return None
    k = min(len(sorted_values) - 1, max(0, round(p / 100 * len(sorted_values)) - 1))
    return sorted_values[k]


def parse_wrk(log):
    for line in log.splitlines():
        if line.startswith("WRK_RESULT "):
            r = json.loads(line[len("WRK_RESULT "):])
            ok = r["requests"] - r["non2xx"]
            secs = r["duration_us"] / 1e6
            return {
                "tx": ok, "errors": r["non2xx"] + r["socket_errors"], "secs": secs,
                "rate": ok / secs if secs else 0,
                "p50_ms": r["p50_us"] / 1000, "p99_ms": r["p99_us"] / 1000,
            }
    return None


def parse_pgbench(log, prefix, window):
    """pgbench's totals; with a window (start, end Unix times, see measure.py), only the
    transactions that ended inside it, from the per-transaction log (-l: client, tx
    number, latency µs, script, end time s, end time µs)."""
    m = re.search(r"number of transactions actually processed: (\d+)", log)
    tps = re.search(r"tps = ([\d.]+) \(without initial connection time\)", log)
    if not m or not tps:
        return None
    failed = re.search(r"number of failed transactions: (\d+)", log)
    lat = []
    for path in glob.glob(prefix + ".*"):
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) < 6 or not parts[2].isdigit():
                    continue
                end = int(parts[4]) + int(parts[5]) / 1e6
                if window[0] is None or window[0] <= end <= window[1]:
                    lat.append(int(parts[2]))
    lat.sort()
    if window[0] is not None:
        tx, secs = len(lat), window[1] - window[0]
    else:
        tx = int(m.group(1))
        secs = tx / float(tps.group(1)) if float(tps.group(1)) else 0
    return {
        "tx": tx, "errors": int(failed.group(1)) if failed else 0, "secs": secs,
        "rate": tx / secs if secs else 0,
        "p50_ms": percentile(lat, 50) / 1000 if lat else None,
        "p99_ms": percentile(lat, 99) / 1000 if lat else None,
    }


def add(results, scenario, conns, side, measure, prefix=None, clients=None):
    with open(measure) as f:
        m = json.load(f)
    log = open(measure[: -len(".json")] + ".log").read()
    r = (parse_wrk(log) if side == "http"
         else parse_pgbench(log, prefix, (m.get("window_start"), m.get("window_end"))))
    rec = {"scenario": scenario, "conns": int(conns), "side": side, "exit": m["exit"],
           "clients": int(clients or conns)}
    if r is None:
        tail = " | ".join(l for l in log.strip().splitlines()[-3:])
        rec["failed"] = tail[-300:] or f"exit {m['exit']}"
    else:
        rec.update(r)
        tx = max(r["tx"], 1)
        rec["pg_us"] = m["pg_cpu_s"] * 1e6 / tx
        rec["client_us"] = m["client_cpu_s"] * 1e6 / tx
        rec["server_us"] = m["server_cpu_s"] * 1e6 / tx if m.get("server_cpu_s") is not None else None
        rec["rss_mb"] = m["server_rss_kb_max"] / 1024 if m.get("server_rss_kb_max") else None
        # cores the rest of the machine (other users) kept busy during the run
        ours = m["pg_cpu_s"] + m["client_cpu_s"] + (m.get("server_cpu_s") or 0)
        rec["others_cores"] = max(0.0, (m["machine_busy_s"] - ours) / m["wall_s"])
    with open(results, "a") as f:
        f.write(json.dumps(rec) + "\n")


def load(results):
    runs, notes, extra = {}, [], []
    for line in open(results):
        r = json.loads(line)
        if "note" in r:
            notes.append(r["note"])
        elif "section" in r:
            extra.append(r)
        else:
            runs[(r["scenario"], r["conns"], r["side"])] = r
    return runs, notes, extra


def f0(v):
    return "n/a" if v is None else f"{v:,.0f}"


def f1(v):
    return "n/a" if v is None else f"{v:.1f}"


def f2(v):
    return "n/a" if v is None else f"{v:.2f}"


SCENARIOS = [
    ("spread", "pay-now orders, 1,000 products", "pgbench: same SQL (LockPlace + WritePlan)"),
    ("hot", "pay-now orders, ONE product", "pgbench: the pre-slot SQL on one product row"),
    ("coupon", "FCFS coupon issue, one coupon",
     "pgbench: the pre-slot ISSUE_SQL on one coupon counter row"),
    ("popular", "GET /products/popular?days=30", "pgbench: best_sellers SQL"),
]


def rate_of(runs, scenario, conns, side):
    r = runs.get((scenario, conns, side))
    return r["rate"] if r and "rate" in r else None


def ratio(a, b):
    return a / b if a is not None and b else None


def table(results, out):
    runs, notes, extra = load(results)
    lines = []
    w = lines.append
    w("| scenario | conns | HTTP tx/s | pgbench tx/s | ratio | HTTP p50 / p99 ms | pgbench p50 / p99 ms "
      "| server CPU µs/tx | PG CPU µs/tx (HTTP) | PG CPU µs/tx (pgbench) | load gen µs/tx (wrk / pgbench) "
      "| server RSS MB | errors (HTTP / pgbench) | others' cores |")
    w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    conns_all = sorted({k[1] for k in runs})
    for key, label, _ in SCENARIOS:
        for c in conns_all:
            h, p = runs.get((key, c, "http")), runs.get((key, c, "pgbench"))
            if not h and not p:
                continue
            h = h or {}
            p = p or {}

            def cell(r, k, fmt):
                if not r:
                    return "–"
                if "failed" in r:
                    return "FAILED"
                return fmt(r.get(k))

            others = [x.get("others_cores") for x in (h, p) if x.get("others_cores") is not None]
            shown = f"{c} (pgbench {p['clients']})" if p.get("clients", c) != c else f"{c}"
            w(f"| {label} | {shown} | {cell(h, 'rate', f0)} | {cell(p, 'rate', f0)} "
              f"| {f2(ratio(h.get('rate'), p.get('rate')))} "
              f"| {cell(h, 'p50_ms', f1)} / {cell(h, 'p99_ms', f1)} "
              f"| {cell(p, 'p50_ms', f1)} / {cell(p, 'p99_ms', f1)} "
              f"| {cell(h, 'server_us', f0)} | {cell(h, 'pg_us', f0)} | {cell(p, 'pg_us', f0)} "
              f"| {cell(h, 'client_us', f0)} / {cell(p, 'client_us', f0)} "
              f"| {cell(h, 'rss_mb', f0)} | {cell(h, 'errors', f0)} / {cell(p, 'errors', f0)} "
              f"| {' / '.join(f1(o) for o in others) or '–'} |")
    w("")
    w("pgbench sides: " + "; ".join(f"{label}: {what}" for _, label, what in SCENARIOS) + ".")
    for r in runs.values():
        if "failed" in r:
            w(f"- FAILED {r['scenario']} {r['conns']} {r['side']}: `{r['failed']}`")

    # targets (issues 10, 11, 13): PASS/MISS, never an exit code
    checks = []

    def check(what, value, ok, shown):
        if value is None:
            checks.append(f"- n/a  {what}: not measured")
        else:
            checks.append(f"- {'PASS' if ok(value) else 'MISS'} {what}: {shown(value)}")

    def get(s, c, side, k):
        r = runs.get((s, c, side))
        return r.get(k) if r else None

    for c, want in ((8, 0.8), (32, 0.6)):
        check(f"issue 10, spread, {c} conns: HTTP >= {want} x pgbench",
              ratio(rate_of(runs, "spread", c, "http"), rate_of(runs, "spread", c, "pgbench")),
              lambda v, want=want: v >= want, lambda v: f"{v:.2f}")
    check("issue 10, spread, 32 conns: p99 <= 50 ms", get("spread", 32, "http", "p99_ms"),
          lambda v: v <= 50, lambda v: f"{v:.1f} ms")
    for c in (8, 32):
        check(f"issue 10, spread, {c} conns: server CPU <= 250 µs/order",
              get("spread", c, "http", "server_us"), lambda v: v <= 250, lambda v: f"{v:.0f} µs")
        check(f"issue 10, spread, {c} conns: PostgreSQL CPU <= 1,000 µs/order",
              get("spread", c, "http", "pg_us"), lambda v: v <= 1000, lambda v: f"{v:.0f} µs")
    rss = [r.get("rss_mb") for r in runs.values() if r.get("rss_mb")]
    check("issue 10: server RSS < 100 MB (largest in any run)", max(rss) if rss else None,
          lambda v: v < 100, lambda v: f"{v:.0f} MB")
    for c in (8, 32):
        check(f"issue 11, hot product, {c} conns: >= 1.5 x single-row pgbench",
              ratio(rate_of(runs, "hot", c, "http"), rate_of(runs, "hot", c, "pgbench")),
              lambda v: v >= 1.5, lambda v: f"{v:.2f}")
        check(f"issue 11, hot product, {c} conns: >= 0.9 x the service's spread rate",
              ratio(rate_of(runs, "hot", c, "http"), rate_of(runs, "spread", c, "http")),
              lambda v: v >= 0.9, lambda v: f"{v:.2f}")
    check("issue 11, hot product, 32 conns: p99 <= 50 ms", get("hot", 32, "http", "p99_ms"),
          lambda v: v <= 50, lambda v: f"{v:.1f} ms")
    for c in (8, 32):
        check(f"issue 11, hot coupon, {c} conns: >= 1.5 x single-row pgbench",
              ratio(rate_of(runs, "coupon", c, "http"), rate_of(runs, "coupon", c, "pgbench")),
              lambda v: v >= 1.5, lambda v: f"{v:.2f}")
    check("issue 11, hot coupon, 32 conns: p99 <= 50 ms", get("coupon", 32, "http", "p99_ms"),
          lambda v: v <= 50, lambda v: f"{v:.1f} ms")

    for r in extra:
        if r["section"] == "search":
            check(f"issue 13, admin search `{r['filter']}`: page < 20 ms with an index",
                  r.get("total_ms"), lambda v, r=r: v < 20 and r["no_seq_scan"],
                  lambda v, r=r: f"{v:.2f} ms"
                  + ("" if r["no_seq_scan"] else " (Seq Scan on orders)"))

    body = "\n".join(lines)
    sections = []
    search = [r for r in extra if r["section"] == "search"]
    if search:
        s = ["| admin search (1,000,000 orders), filter | query string | search ms | read ms "
             "| page ms (median of 5) | HTTP ms (median of 5) | rows | plan |",
             "|---|---|---:|---:|---:|---:|---:|---|"]
        for r in search:
            s.append(f"| {r['filter']} | `{r['query']}` | {f2(r['search_ms'])} | {f2(r['read_ms'])} "
                     f"| {f2(r['total_ms'])} | {f1(r.get('http_ms'))} | {r['rows']} | {r['plan']} |")
        sections.append("\n".join(s))
    popular = [r for r in extra if r["section"] == "popular"]
    if popular:
        sections.append("\n".join(
            f"- popular products, days={r['days']} ({r['data']}): median {r['median_ms']:.1f} ms "
            f"(runs: {', '.join(f'{t:.1f}' for t in r['runs'])})" for r in popular))
    text = ("## Throughput, side by side\n\n" + body + "\n\n" + "\n\n".join(sections)
            + "\n\n## Targets\n\n" + "\n".join(checks) + "\n")
    if notes:
        text += "\n## Notes\n\n" + "\n".join(f"- {n}" for n in notes) + "\n"
    print(text)
    with open(out, "w") as f:
        f.write("# make bench\n\n" + text)


def main(argv):
    if argv[1] == "add":
        add(*argv[2:])
    elif argv[1] == "note":
        with open(argv[2], "a") as f:
            f.write(json.dumps({"note": " ".join(argv[3:])}) + "\n")
    elif argv[1] == "table":
        table(argv[2], argv[3])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
