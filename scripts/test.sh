#!/usr/bin/env bash
# make test: lint, the dependency rule, then every test against a real PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
DATABASE_URL=$(scripts/db.sh)
export DATABASE_URL
echo "== format"; cargo fmt --all --check
echo "== clippy"; cargo clippy --workspace --all-targets -- -D warnings
echo "== dependency rule"; scripts/check-deps.sh
scripts/drop-test-dbs.sh "$DATABASE_URL"
trap 'scripts/drop-test-dbs.sh "$DATABASE_URL"' EXIT
echo "== tests"
if command -v cargo-nextest >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast "$@"
  echo "== doctests"
  cargo test --workspace --doc --no-fail-fast
else
  echo "(cargo-nextest not found: using cargo test; 'cargo install cargo-nextest' is faster)"
  cargo test --workspace --no-fail-fast "$@"
fi
echo "== example (the shop's flow on the in-memory store)"
cargo run --quiet --example shop -p memory-adapter >/dev/null
