"""Schemathesis hooks for scripts/fuzz.sh (loaded through SCHEMATHESIS_HOOKS).

An Idempotency-Key reused with a different body is refused by design: 422
IDEMPOTENCY_KEY_REUSED (API.md "Conventions"; tests/api/idempotency.rs holds it).
Generated keys collide all the time ("0", "!"), so most state-changing POSTs would be
refused for that alone and never reach their handler. Each valid generated key is made
unique here; an invalid one is left as generated, for the server to refuse (400).
"""

import itertools
import re

import schemathesis

VALID_KEY = re.compile(r"^[!-~]{1,255}$")
_fresh = itertools.count(1)


@schemathesis.hook
def before_call(context, case, kwargs):
    headers = case.headers
    if not headers:
        return
    key = headers.get("Idempotency-Key")
    if isinstance(key, str) and VALID_KEY.match(key):
        headers["Idempotency-Key"] = f"fuzz-{next(_fresh)}-{key}"[:255]
