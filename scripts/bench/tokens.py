#!/usr/bin/env python3
"""Mints user tokens for the wrk scripts: "user_id token" lines.

usage: tokens.py TEMPLATE_TOKEN SECRET FIRST_USER COUNT > users.txt

`commerce-api token --user N` mints one token per process start, too slow for the
100,000 distinct users of the coupon scenario. This copies the header and claims of a
token the binary minted (TEMPLATE_TOKEN), changes only `sub`, and signs it HS256 with
SECRET (the server's COMMERCE__AUTH__JWT_SECRET), so the claims stay whatever the
server mints. bench.sh checks the server accepts one before it measures anything.
"""
import base64
import hashlib
import hmac
import json
import sys


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def unb64(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def main(template, secret, first, count):
    header, claims, _ = template.split(".")
    head = b64(unb64(header))
    claims = json.loads(unb64(claims))
    key = secret.encode()
    out = sys.stdout
    for user in range(first, first + count):
        claims["sub"] = str(user)
        signing = head + b"." + b64(json.dumps(claims, separators=(",", ":")).encode())
        sig = b64(hmac.new(key, signing, hashlib.sha256).digest())
        out.write(f"{user} {(signing + b'.' + sig).decode()}\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
