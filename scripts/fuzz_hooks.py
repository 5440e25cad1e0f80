"""Schemathesis hooks for scripts/fuzz.sh (loaded through SCHEMATHESIS_HOOKS).

1. State to reach. Generated ids almost never name a row, so payment, cancel, refund
   and coupon paths would only ever answer 404. When loaded, this file seeds the
   running server through its own API (FUZZ_BASE, FUZZ_ADMIN_TOKEN): a user with a
   balance, a product with plenty of stock, a coupon the user owns, and a pool of PAID
   and of PENDING orders. `map_case` then points two of every three generated cases at
   those rows (the third keeps what was generated): path ids, and the user and product
   ids of an order body. Each payment takes the next PENDING order and each cancel the
   next order of the pool, so the first ones succeed (a PAID order's cancel refunds)
   and the later ones meet orders already paid or cancelled (409).

2. Fresh Idempotency-Keys. A key reused with a different body is refused by design:
   422 IDEMPOTENCY_KEY_REUSED (API.md "Conventions"; tests/api/idempotency.rs holds it).
   Generated keys collide all the time ("0", "!"), so most state-changing POSTs would
   be refused for that alone and never reach their handler. Each valid generated key
   is made unique here; an invalid one is left as generated, for the server to refuse.
"""

import itertools
import json
import os
import re
import urllib.request

import schemathesis

VALID_KEY = re.compile(r"^[!-~]{1,255}$")
_fresh = itertools.count(1)

BASE = os.environ.get("FUZZ_BASE", "")
ADMIN = os.environ.get("FUZZ_ADMIN_TOKEN", "")
USER = int(os.environ.get("FUZZ_USER_ID", "4242"))
POOL = int(os.environ.get("FUZZ_ORDER_POOL", "40"))


def _call(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(BASE + path, data=data, method=method)
    req.add_header("Authorization", f"Bearer {ADMIN}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=30) as res:
        return json.loads(res.read() or b"null")


def _seed():
    """The rows the cases are pointed at; empty when no server was named."""
    if not BASE or not ADMIN:
        return {}
    product = _call(
        "POST",
        "/api/v1/admin/products",
        {"name": "Fuzz stock", "price": 1000, "stock": 1_000_000},
    )["id"]
    _call(
        "POST",
        f"/api/v1/users/{USER}/balance/charges",
        {"amount": 10_000_000, "payment_method": "card"},
    )
    coupon = _call(
        "POST",
        "/api/v1/admin/coupons",
        {
            "name": "Fuzz coupon",
            "discount_type": "FIXED",
            "discount_value": 100,
            "valid_from": "2020-01-01T00:00:00Z",
            "valid_until": "2100-01-01T00:00:00Z",
            "issue_to": [USER],
        },
    )["id"]
    order = {"user_id": USER, "items": [{"product_id": product, "quantity": 1}]}
    paid = [_call("POST", "/api/v1/orders", dict(order, pay_now=True))["id"] for _ in range(POOL)]
    pending = [_call("POST", "/api/v1/orders", order)["id"] for _ in range(POOL)]
    print(
        f"fuzz seed: user {USER}, product {product}, coupon {coupon}, "
        f"{len(paid)} PAID and {len(pending)} PENDING orders",
        flush=True,
    )
    return {"product": product, "coupon": coupon, "paid": paid, "pending": pending}


SEED = _seed()
_turn = itertools.count()
_next_pending = itertools.count()
_next_any = itertools.count()


def _pending_order():
    pool = SEED["pending"]
    return pool[next(_next_pending) % len(pool)]


def _any_order():
    pool = SEED["paid"] + SEED["pending"]
    return pool[next(_next_any) % len(pool)]


@schemathesis.hook
def map_case(context, case):
    if not SEED or next(_turn) % 3 == 2:
        return case
    path = case.operation.path
    params = case.path_parameters
    if params:
        if "order_id" in params:
            if path.endswith("/payment"):
                params["order_id"] = _pending_order()
            else:
                params["order_id"] = _any_order()
        if "user_id" in params:
            params["user_id"] = USER
        if "product_id" in params or (path.startswith("/api/v1/") and "{id}" in path and "product" in path):
            params["product_id" if "product_id" in params else "id"] = SEED["product"]
        if "coupon_id" in params:
            params["coupon_id"] = SEED["coupon"]
    body = case.body
    if path == "/api/v1/orders" and case.method.upper() == "POST" and isinstance(body, dict):
        body["user_id"] = USER
        items = body.get("items")
        if isinstance(items, list):
            for item in items[:1]:
                if isinstance(item, dict):
                    item["product_id"] = SEED["product"]
    return case


@schemathesis.hook
def before_call(context, case, kwargs):
    headers = case.headers
    if not headers:
        return
    key = headers.get("Idempotency-Key")
    if isinstance(key, str) and VALID_KEY.match(key):
        headers["Idempotency-Key"] = f"fuzz-{next(_fresh)}-{key}"[:255]
