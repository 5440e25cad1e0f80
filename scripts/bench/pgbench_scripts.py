#!/usr/bin/env python3
"""Writes the pgbench scripts of `make bench` from the SQL our stores send.

The PostgreSQL side of every side-by-side figure runs the statements the server runs,
read out of the Rust sources at bench time (rust_sql.py), with each `$name` parameter
turned into a pgbench variable of the type diesel binds (`:p_name::int8`); pgbench runs
them with -M prepared, so PostgreSQL prepares and plans them as it does for the server.
What pgbench cannot send exactly is written by hand, and said here:
  - NULL: pgbench has no NULL parameter, so a NULL parameter is NULLIF(:p_null, 'NULL')
    (a parameter PostgreSQL folds to NULL as it would the server's NULL);
  - an array the server binds from the request ($product_ids) is ARRAY[:pid]::int8[];
  - $event_id (a UUID the server makes) is gen_random_uuid().
The values are those of the request the bench sends over HTTP: one line, quantity 1,
pay_now, no coupon, no Idempotency-Key. The decision between the two statements is the
domain's (Rust); for this order it is plain arithmetic, done with \\set.

usage: pgbench_scripts.py pay-now OUT.sql          (LockPlace + WritePlan, order.rs)
       pgbench_scripts.py coupon-issue OUT.sql     (IssueCoupon or ISSUE_SQL, coupon.rs)
       pgbench_scripts.py best-sellers OUT.sql     (PgOrderStore::best_sellers, order.rs)
       pgbench_scripts.py read-orders              (prints ReadOrders, order.rs)
Each OUT.sql comes with OUT.sql.defines: name=value lines for pgbench -D (constants).
Exit status 3: the Rust SQL has a parameter this file does not know (update PAY_NOW).
"""

import os
import re
import sys

# ORDER_RS / COUPON_RS may be pointed elsewhere (to try another checkout's SQL)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rust_sql  # noqa: E402

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
ORDER_RS = os.environ.get("ORDER_RS", os.path.join(ROOT, "crates/adapters/postgres/src/order.rs"))
COUPON_RS = os.environ.get("COUPON_RS", os.path.join(ROOT, "crates/adapters/postgres/src/coupon.rs"))


# What each parameter of LockPlace and WritePlan is for a pay-now order of one line,
# quantity 1, no coupon, no Idempotency-Key (what PgOrderStore::place and write_plan
# bind for it). ("var", v): pgbench variable :v; ("const", text): a constant passed
# with -D; ("null",): NULL; ("expr", sql): an SQL expression (a hand translation).
# Variables s_* come from LockPlace's row (\gset s_), the others from \set lines.
PAY_NOW = {
    # LockPlace
    "from_cart": ("const", "false"),
    "user_id": ("var", "uid"),
    "product_ids": ("expr", "ARRAY[:pid::int8]"),
    "quantities": ("const", "{1}"),  # since stock slots (issue 11)
    "coupon_id": ("null",),
    "pay_now": ("const", "true"),
    # WritePlan: the order and its line, as the decision prices them
    "order_id": ("var", "s_new_order_id"),
    "is_new": ("const", "true"),
    "from_status": ("null",),
    "status": ("const", "PAID"),
    "subtotal": ("var", "price"),
    "discount": ("const", "0"),
    "total": ("var", "price"),
    "created_at": ("var", "p_now"),
    "expires_at": ("var", "p_expires"),
    "paid_at": ("var", "p_now"),
    "cancelled_at": ("null",),
    "cancel_reason": ("null",),
    "refunded_total": ("const", "0"),
    "line_products": ("var", "s_product_ids"),
    "line_names": ("var", "s_product_names"),
    "line_prices": ("var", "s_product_prices"),
    "line_quantities": ("const", "{1}"),
    "line_subtotals": ("var", "s_product_prices"),
    "now": ("var", "p_now"),
    # stock, coupon (none), balance and its history row
    "stock_products": ("var", "s_product_ids"),
    # since stock slots: the slot the snapshot holds (take_stock_slots); when it had to
    # combine every slot, unnest pairs the first one with the product, as the decision
    # takes one unit from the first slot that has it
    "stock_slots": ("var", "s_slot_indexes"),
    "stock_deltas": ("const", "{-1}"),
    "user_coupon_id": ("null",),
    "coupon_status": ("const", "AVAILABLE"),
    "coupon_from": ("const", "USED"),
    "coupon_order": ("null",),
    "coupon_used_at": ("null",),
    "has_balance": ("const", "true"),
    "balance_before": ("var", "s_balance"),
    "balance_after": ("var", "balance_after"),
    "history_kind": ("const", "PAYMENT"),
    "history_amount": ("var", "history_amount"),
    # no refund
    "refund_id": ("null",),
    "refund_amount": ("const", "0"),
    "refund_reason": ("null",),
    "refund_products": ("const", "{}"),
    "refund_quantities": ("const", "{}"),
    # the payment, units sold, the cart, the order.paid event
    "payment_id": ("var", "s_new_payment_id"),
    "payment_amount": ("var", "price"),
    "payment_status": ("const", "PAID"),
    "payment_paid_at": ("var", "p_now"),
    "payment_refunded_at": ("null",),
    "sales_products": ("var", "s_product_ids"),
    "sales_quantities": ("const", "{1}"),
    "sales_paid_at": ("var", "p_now"),
    "cart_products": ("var", "s_product_ids"),
    "event_id": ("expr", "gen_random_uuid()"),
    "event_type": ("const", "order.paid"),
    "event_payload": ("var", "p_event_payload"),
    # no Idempotency-Key
    "response_status": ("null",),
    "response_headers": ("null",),
    "response_body": ("null",),
    "idem_caller": ("null",),
    "idem_key": ("null",),
    "idem_claim": ("null",),
}


class Unknown(Exception):
    pass


def translate(sql, types, values, defines):
    """`$name` -> pgbench; constants go to `defines` (-D p_name=value)."""

    def one(m):
        name = m.group(1)
        if name not in values:
            raise Unknown(f"${name} (add it to PAY_NOW in scripts/bench/pgbench_scripts.py)")
        if name not in types:
            raise Unknown(f"${name} has no .bind(\"{name}\", Bind::..) to type it")
        cast = "" if sql.startswith("::", m.end()) else "::" + types[name]
        kind = values[name][0]
        if kind == "var":
            return ":" + values[name][1] + cast
        if kind == "const":
            defines["p_" + name] = values[name][1]
            return ":p_" + name + cast
        if kind == "null":
            defines["p_null"] = "NULL"
            return "NULLIF(:p_null, 'NULL')::" + types[name]
        return "(" + values[name][1] + ")" + cast

    return rust_sql.PARAM.sub(one, sql)


def positional(sql, names):
    """ISSUE_SQL-style `$1..$n` -> `:name::type`."""
    return re.sub(r"\$(\d+)", lambda m: names[int(m.group(1))], sql)


def write(out, lines, defines):
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(out + ".defines", "w") as f:
        for k, v in sorted(defines.items()):
            f.write(f"{k}={v}\n")


HEADER = "-- GENERATED by scripts/bench/pgbench_scripts.py from {src}: do not edit"


def pay_now(out):
    stmts = rust_sql.read_source(ORDER_RS)
    types = rust_sql.bind_types(ORDER_RS)
    defines = {}
    lock = translate(stmts["LockPlace"], types, PAY_NOW, defines)
    write_plan = translate(stmts["WritePlan"], types, PAY_NOW, defines)
    write(out, [
        HEADER.format(src="crates/adapters/postgres/src/order.rs (LockPlace, WritePlan)"),
        "-- A pay-now order of one line, quantity 1, as PgOrderStore::place runs it:",
        "-- BEGIN; the snapshot statement; (the decision); the write statement; COMMIT.",
        "-- Run time -D: first_user users first_product products nclients n=0 p_now",
        "-- p_expires p_event_payload. Client c's k-th order: user and product",
        "-- (c + k * nclients) modulo users / products, as the wrk script picks them.",
        "\\set n :n + 1",
        "\\set uid :first_user + (:client_id + :n * :nclients) % :users",
        "\\set pid :first_product + (:client_id + :n * :nclients) % :products",
        "-- the bench's products cost 1000 + id (bench.sh checks it)",
        "\\set price 1000 + :pid",
        "BEGIN;",
        lock + " \\gset s_",
        "-- the decision: debit the price",
        "\\set balance_after :s_balance - :price",
        "\\set history_amount 0 - :price",
        write_plan + ";",
        "COMMIT;",
    ], defines)


def coupon_issue(out):
    stmts = rust_sql.read_source(COUPON_RS)
    if "IssueCoupon" in stmts:
        # since coupon slots (issue 11): a crate::sql statement with named parameters
        values = {"coupon": ("var", "coupon"), "user": ("var", "uid"), "now": ("var", "p_now")}
        sql = translate(stmts["IssueCoupon"], rust_sql.bind_types(COUPON_RS), values, {})
        src = "crates/adapters/postgres/src/coupon.rs (IssueCoupon)"
    else:
        # PgCouponStore::issue binds $1 coupon (BigInt), $2 user (BigInt), $3 now (Timestamptz)
        sql = positional(stmts["ISSUE_SQL"],
                         {1: ":coupon::int8", 2: ":uid::int8", 3: ":p_now::timestamptz"})
        src = "crates/adapters/postgres/src/coupon.rs (ISSUE_SQL)"
    write(out, [
        HEADER.format(src=src),
        "-- First-come-first-served issuing of one coupon, one statement (autocommit),",
        "-- each transaction for a user never seen before: first_user + client + k * nclients.",
        "\\set n :n + 1",
        "\\set uid :first_user + :client_id + :n * :nclients",
        sql + ";",
    ], {})


def best_sellers_sql():
    src = open(ORDER_RS, encoding="utf-8").read()
    at = src.index("async fn best_sellers")
    at = src.index("sql_query(", at) + len("sql_query(")
    at = src.index('"', at)
    text, _ = rust_sql._string_literal(src, at)
    return text


def best_sellers(out):
    # PgOrderStore::best_sellers binds $1 since (Timestamptz), $2 limit (BigInt)
    sql = positional(best_sellers_sql(), {1: ":p_since::timestamptz", 2: ":p_limit::int8"})
    write(out, [
        HEADER.format(src="crates/adapters/postgres/src/order.rs (PgOrderStore::best_sellers)"),
        "-- GET /products/popular: run time -D p_since p_limit.",
        sql + ";",
    ], {})


def main(argv):
    what = argv[1]
    try:
        if what == "pay-now":
            pay_now(argv[2])
        elif what == "coupon-issue":
            coupon_issue(argv[2])
        elif what == "best-sellers":
            best_sellers(argv[2])
        elif what == "read-orders":
            print(rust_sql.read_source(ORDER_RS)["ReadOrders"])
        elif what == "best-sellers-sql":
            print(best_sellers_sql())
        else:
            sys.exit(__doc__)
    except (Unknown, KeyError, ValueError) as e:
        print(f"pgbench_scripts.py {what}: cannot translate the Rust SQL: {e}", file=sys.stderr)
        sys.exit(3)


if __name__ == "__main__":
    main(sys.argv)
