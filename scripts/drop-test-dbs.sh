#!/usr/bin/env bash
# Drops databases left behind by test runs that were killed (each test drops its own).
set -euo pipefail
server=$1
for db in $(psql "$server" -tAqc "SELECT datname FROM pg_database WHERE datname LIKE 'commerce\_test\_%'"); do
  psql "$server" -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null || true
done
