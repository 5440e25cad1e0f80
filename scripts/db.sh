#!/usr/bin/env bash
# Finds or provisions a PostgreSQL server and prints its URL (on database "postgres").
#   1. $DATABASE_URL if set;
#   2. else a local server on 127.0.0.1:5432 that lets user "postgres" in;
#   3. else a private cluster under .data/pg (initdb + pg_ctl, port 54329).
# COMMERCE_PRIVATE_DB=1 skips 1 and 2 (the fresh-laptop path, on any machine).
# Messages go to stderr; only the URL goes to stdout.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
say() { echo "db: $*" >&2; }

if [ -n "${DATABASE_URL:-}" ] && [ -z "${COMMERCE_PRIVATE_DB:-}" ]; then
  echo "$DATABASE_URL"
  exit 0
fi

local_url="postgres://postgres@127.0.0.1:5432/postgres"
if [ -z "${COMMERCE_PRIVATE_DB:-}" ] && command -v psql >/dev/null 2>&1 && psql "$local_url" -tAqc 'SELECT 1' >/dev/null 2>&1; then
  say "using the local server at 127.0.0.1:5432"
  echo "$local_url"
  exit 0
fi

# A private cluster. Find the server binaries (Debian keeps them off PATH).
bindir=""
if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
  bindir=$(dirname "$(command -v initdb)")
else
  for d in /usr/lib/postgresql/*/bin /usr/local/opt/postgresql*/bin /opt/homebrew/opt/postgresql*/bin; do
    [ -x "$d/initdb" ] && bindir="$d"
  done
fi
if [ -z "$bindir" ]; then
  cat >&2 <<'MSG'
db: PostgreSQL is not installed, and no server answers on 127.0.0.1:5432.
db: Install it, then run this again:
db:   Debian/Ubuntu:  sudo apt-get install postgresql
db:   Fedora:         sudo dnf install postgresql-server
db:   macOS:          brew install postgresql@16
db: or point DATABASE_URL at a server you already have
db: (e.g. DATABASE_URL=postgres://user:pass@host:5432/postgres).
MSG
  exit 1
fi

data="$root/.data/pg"
port=54329
url="postgres://postgres@127.0.0.1:$port/postgres"
as_owner=()
if [ "$(id -u)" = 0 ]; then
  # initdb refuses to run as root: the cluster belongs to the postgres user.
  id postgres >/dev/null 2>&1 || { say "running as root needs a 'postgres' user (useradd -r postgres)"; exit 1; }
  as_owner=(runuser -u postgres --)
fi

if [ ! -f "$data/PG_VERSION" ]; then
  say "creating a private cluster in $data"
  mkdir -p "$data"
  [ "$(id -u)" = 0 ] && chown -R postgres "$root/.data"
  "${as_owner[@]}" "$bindir/initdb" -D "$data" -U postgres -A trust -E UTF8 >"$root/.data/initdb.log" 2>&1 \
    || { say "initdb failed, see .data/initdb.log"; exit 1; }
fi
if ! "${as_owner[@]}" "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1; then
  say "starting the private cluster on 127.0.0.1:$port"
  "${as_owner[@]}" "$bindir/pg_ctl" -D "$data" -l "$data/server.log" -w \
    -o "-p $port -k $data -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off" start >/dev/null \
    || { say "pg_ctl start failed, see $data/server.log"; exit 1; }
fi
echo "$url"
