#!/usr/bin/env bash
# make docs-check: opens /docs (no slash, as a newcomer types it; the server redirects
# to Swagger UI at /docs/) in headless Chromium and checks that the operations list
# renders, tags in the order of the contract, with every request kept on this machine.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
mkdir -p .data
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing Debian's chromium"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "docs-check: needs chromium (Debian/Ubuntu: sudo apt-get install chromium)" >&2
    exit 1
  fi
fi
server=$(scripts/db.sh)
COMMERCE__DATABASE__URL=$(fresh_db "$server" "commerce_docs_$COMMERCE_DB_TAG")
export COMMERCE__DATABASE__URL
export COMMERCE__SERVER__PORT=${DOCS_PORT:-18081}
cargo build -q -p commerce-api
bin=target/debug/commerce-api
profile=$(mktemp -d)
trap 'stop_server; rm -rf "$profile"' EXIT
RUST_LOG=info start_server $bin .data/docs-server.log
base="http://127.0.0.1:$COMMERCE__SERVER__PORT"
flags=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run
  --disable-background-networking --disable-component-update --disable-sync
  --disable-default-apps --disable-extensions --user-data-dir="$profile"
  --disable-client-side-phishing-detection --disable-domain-reliability --no-default-browser-check
  --disable-features=AutofillServerCommunication,OptimizationHints,Translate,MediaRouter,NetworkTimeServiceQuerying,CertificateTransparencyComponentUpdater
  --allow-browser-signin=false --disable-breakpad --metrics-recording-only
  # any host but this machine fails to resolve: nothing leaves it
  --host-resolver-rules="MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"
  --virtual-time-budget=15000)
chromium "${flags[@]}" --log-net-log=.data/docs-netlog.json --dump-dom "$base/docs" > .data/docs-dom.html 2>/dev/null
chromium "${flags[@]}" --window-size=1280,2000 --screenshot=.data/docs.png "$base/docs" >/dev/null 2>&1 || true
ops=$(grep -o 'class="opblock opblock-[a-z]*' .data/docs-dom.html | wc -l)
echo "docs-check: Swagger UI rendered $ops operations (DOM in .data/docs-dom.html, screenshot .data/docs.png)"
for path in "/api/v1/users/{user_id}/balance/charges" "/health/live"; do
  grep -qF "$path" .data/docs-dom.html || { echo "docs-check: $path is missing from the rendered page" >&2; exit 1; }
done
[ "$ops" -ge 5 ] || { echo "docs-check: expected the operations list, found $ops operations" >&2; exit 1; }
# the tag sections in the order of API.md's sections
tags=$(grep -o 'id="operations-tag-[a-z_-]*"' .data/docs-dom.html | sed 's/.*operations-tag-\([a-z_-]*\)"/\1/' | tr '\n' ' ')
[ "$tags" = "health products balance cart coupons orders outbox " ] ||
  { echo "docs-check: tags in the wrong order: $tags" >&2; exit 1; }
echo "docs-check: tags in order: $tags"
# Swagger UI must not reach out (its validator badge would fetch validator.swagger.io)
grep -q 'validator.swagger.io' .data/docs-dom.html && { echo "docs-check: the page references validator.swagger.io" >&2; exit 1; }
# Every request the page made went to this machine: read the browser's net log. Requests
# initiated by the page carry its origin; Chromium's own background calls (updater,
# sign-in) carry none, and the resolver rule above fails them before they leave.
python3 - "$base" <<'PY'
import json, sys
base = sys.argv[1]
log = json.load(open(".data/docs-netlog.json"))
names = {v: k for k, v in log["constants"]["logEventTypes"].items()}
page, browser = set(), set()
for e in log["events"]:
    if names.get(e["type"]) != "URL_REQUEST_START_JOB":
        continue
    p = e.get("params", {})
    url, initiator = p.get("url"), p.get("initiator")
    if not url:
        continue
    # the navigation itself (/docs, redirected to /docs/) carries no origin
    if url.startswith(base + "/docs") and initiator == "not an origin" or (initiator or "").startswith("http"):
        page.add(url)
    else:
        browser.add(url)
outside = sorted(u for u in page if not u.startswith(base))
if outside or not page:
    print("docs-check: the page requested URLs off this machine:", *outside, sep="\n  ", file=sys.stderr)
    sys.exit(1)
print(f"docs-check: the page made {len(page)} requests, all to {base}"
      f" ({len(browser)} of Chromium's own background calls were refused by the resolver rule)")
PY
