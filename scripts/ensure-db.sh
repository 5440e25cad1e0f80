#!/usr/bin/env bash
# ensure-db.sh SERVER_URL NAME: creates database NAME on the server if it is missing,
# and prints its URL.
set -euo pipefail
server=$1 name=$2
base=${server%%\?*}; query=${server#"$base"}
db_url="${base%/*}/$name$query"
if ! psql "$server" -tAqc "SELECT 1 FROM pg_database WHERE datname = '$name'" | grep -q 1; then
  psql "$server" -qc "CREATE DATABASE \"$name\"" >/dev/null
  echo "db: created database $name" >&2
fi
echo "$db_url"
