# The two commands a newcomer needs: `make run` and `make test`. See README.md.
.PHONY: run test fuzz docs-check build lint bench db clean-db help

run: ## build, provision PostgreSQL, migrate, seed demo data, serve on :8080
	@scripts/run.sh

test: ## format, clippy, the dependency rule, and every test against a real PostgreSQL
	@scripts/test.sh

fuzz: ## contract fuzzing of a running server with schemathesis (no 5xx, responses match the OpenAPI document)
	@scripts/fuzz.sh

docs-check: ## open /docs in headless Chromium and check the operations list renders offline
	@scripts/docs-check.sh

bench: ## speed goals (issues 10, 11, 13): HTTP beside pgbench on the same SQL, admin search, popular products; table in .data/bench-report.md
	@scripts/bench.sh

build: ## build everything
	cargo build --workspace --all-targets

lint: ## format check and clippy only
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings
	scripts/check-deps.sh

db: ## print the URL of the PostgreSQL server make run/test use (provisions one if needed)
	@scripts/db.sh

clean-db: ## stop and delete the private cluster under .data/
	@if [ -f .data/pg/PG_VERSION ]; then \
	  if [ "$$(id -u)" = 0 ]; then runuser -u postgres -- pg_ctl -D .data/pg stop || true; \
	  else pg_ctl -D .data/pg stop || true; fi; \
	fi
	rm -rf .data

help:
	@grep -E '^[a-z-]+:.*## ' Makefile | sed 's/:.*## /\t/'
