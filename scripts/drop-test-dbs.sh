#!/usr/bin/env bash
# drop-test-dbs.sh SERVER_URL: drops this checkout's test databases and template
# (commerce_test_<tag>_*, commerce_tpl_<tag>_*): those of killed runs before a run, and
# everything after it, so a shared server keeps nothing of ours. Other checkouts' are
# left alone.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
server=$1
for db in $(psql "$server" -tAqc "SELECT datname FROM pg_database WHERE datname LIKE 'commerce\_test\_${COMMERCE_DB_TAG}\_%' OR datname LIKE 'commerce\_tpl\_${COMMERCE_DB_TAG}\_%'"); do
  psql "$server" -qc "ALTER DATABASE \"$db\" IS_TEMPLATE false" >/dev/null 2>&1 || true
  psql "$server" -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null || true
done
