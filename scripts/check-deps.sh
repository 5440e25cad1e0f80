#!/usr/bin/env bash
# Domain crates stay pure: no database, web or HTTP-client crate in their normal dependencies.
set -euo pipefail
status=0
for crate in kernel balance stock coupon outbox order payment; do
  [ -f "crates/$crate/Cargo.toml" ] || continue
  grep -q "\"crates/$crate\"" Cargo.toml || continue
  bad=$(cargo tree -p "$crate" -e normal --prefix none 2>/dev/null \
    | grep -Eo '^(diesel|diesel-async|actix-web|actix-http|reqwest|hyper|tokio-postgres|awc|sqlx) v' | sort -u | tr '\n' ' ' || true)
  if [ -n "$bad" ]; then
    echo "check-deps: domain crate '$crate' depends on: $bad" >&2
    status=1
  fi
done
[ $status = 0 ] && echo "check-deps: domain crates depend on no database, web or HTTP crate"
exit $status
