#!/usr/bin/env bash
# make docs-check: opens /docs (Swagger UI served by the binary) in headless Chromium
# and checks that the operations list renders, with every request kept on this machine.
set -euo pipefail
cd "$(dirname "$0")/.."
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
export COMMERCE__DATABASE__URL=$(scripts/ensure-db.sh "$server" commerce_docs)
export COMMERCE__SERVER__PORT=${DOCS_PORT:-18081}
cargo build -q -p commerce-api
bin=target/debug/commerce-api
RUST_LOG=info $bin serve > .data/docs-server.log 2>&1 &
pid=$!
profile=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; rm -rf "$profile"' EXIT
base="http://127.0.0.1:$COMMERCE__SERVER__PORT"
for _ in $(seq 1 100); do curl -fs "$base/health/live" >/dev/null 2>&1 && break; sleep 0.2; done
flags=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run
  --disable-background-networking --disable-component-update --disable-sync
  --disable-default-apps --disable-extensions --user-data-dir="$profile"
  # any host but this machine fails to resolve: nothing leaves it
  --host-resolver-rules="MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"
  --virtual-time-budget=15000)
chromium "${flags[@]}" --dump-dom "$base/docs/" > .data/docs-dom.html 2>/dev/null
chromium "${flags[@]}" --window-size=1280,2000 --screenshot=.data/docs.png "$base/docs/" >/dev/null 2>&1 || true
ops=$(grep -o 'class="opblock opblock-[a-z]*' .data/docs-dom.html | wc -l)
echo "docs-check: Swagger UI rendered $ops operations (DOM in .data/docs-dom.html, screenshot .data/docs.png)"
for path in "/api/v1/users/{user_id}/balance/charges" "/health/live"; do
  grep -qF "$path" .data/docs-dom.html || { echo "docs-check: $path is missing from the rendered page" >&2; exit 1; }
done
[ "$ops" -ge 5 ] || { echo "docs-check: expected the operations list, found $ops operations" >&2; exit 1; }
# the server saw only its own assets and document being fetched
if grep -Eo 'path=[^ ]+' .data/docs-server.log | grep -vE 'path=/(docs|api-docs|health)' | grep -q .; then
  echo "docs-check: unexpected requests:" >&2; grep -Eo 'path=[^ ]+' .data/docs-server.log | sort | uniq -c >&2
fi
