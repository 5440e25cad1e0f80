# Shared by the scripts that run a real server (run, test, fuzz, bench, docs-check). Source it.

# A short tag of this checkout (from its path): databases on a shared server are named
# after it, so two clones never use, or drop, each other's databases.
checkout_tag() {
  printf '%s' "$(pwd -P)" | cksum | awk '{ printf "%08x", $1 }'
}
COMMERCE_DB_TAG=${COMMERCE_DB_TAG:-$(checkout_tag)}
export COMMERCE_DB_TAG

# fresh_db SERVER_URL NAME: drops database NAME if it exists, creates it, prints its URL.
fresh_db() {
  psql "$1" -qc "DROP DATABASE IF EXISTS \"$2\" WITH (FORCE)" >/dev/null
  scripts/ensure-db.sh "$1" "$2"
}

# start_server BIN LOG: `BIN serve` in the background on $COMMERCE__SERVER__PORT, output
# to LOG; returns once /health/ready answers (sets server_pid). stop_server ends it.
start_server() {
  "$1" serve > "$2" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 150); do
    curl -fs "http://127.0.0.1:$COMMERCE__SERVER__PORT/health/ready" >/dev/null 2>&1 && return 0
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.2
  done
  echo "the server did not become ready; see $2" >&2
  return 1
}

stop_server() {
  if [ -n "${server_pid:-}" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
}
