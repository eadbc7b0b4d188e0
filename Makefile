# OrderFlow. `make dev` runs the service, `make test` runs every test; both install and start
# what is missing (Temporal dev server, PostgreSQL). `make help` lists the rest.
.DEFAULT_GOAL := help
SHELL := /bin/bash
HTTP_PORT ?= 8080
TEMPORAL_UI_PORT ?= 8233
BASE_URL := http://localhost:$(HTTP_PORT)

.PHONY: help deps fmt lint test test-quick sqlx-prepare config-docs build dev chaos bench soak health create-order get-status cancel-order token temporal-ui logs

help: ## Show this help
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-14s %s\n", $$1, $$2}'

deps: ## Fetch Rust dependencies
	cargo fetch

fmt: ## Format the code
	cargo fmt --all

lint: ## Clippy with warnings as errors
	cargo clippy --workspace --all-targets -- -D warnings

test: ## fmt and clippy checks, then the whole test suite (starts Temporal and PostgreSQL if needed)
	bash scripts/test.sh

test-quick: ## The quick loop: unit tests of the crates without I/O, and workflow replay (seconds, no servers)
	cargo test --quiet -p orderflow-domain -p orderflow-providers -p orderflow-api --lib
	cargo test --quiet -p orderflow-workflow --lib --test replay

sqlx-prepare: ## Refresh the compile-time SQL cache (.sqlx/) after changing a query or a migration
	bash scripts/sqlx-prepare.sh

config-docs: ## Regenerate docs/configuration.md's reference from the flags (a test fails when it drifts)
	UPDATE_DOCS=1 cargo test --quiet -p orderflow --test e2e -- configuration::the_configuration_reference_is_the_flags_own --exact

build: ## Release build of the binary (target/release/orderflow)
	cargo build --release --locked --bin orderflow

dev: ## Run OrderFlow (API + worker) in the foreground, with everything it needs
	bash scripts/dev.sh

bench: ## Benchmark OrderFlow against the engine baseline (make bench ARGS="--seconds 30")
	bash scripts/run-release.sh orderflow-bench $(ARGS)

soak: ## 30 minutes at half the saturated rate, one sample a minute (make soak ARGS="--soak-minutes 120")
	bash scripts/run-release.sh orderflow-bench --soak-minutes 30 --out bench-results/soak $(ARGS)

chaos: ## The big chaos run: 2000 orders under every fault (make chaos ARGS="--seed 42 --orders 5000")
	bash scripts/run-release.sh orderflow-chaos $(ARGS)

# The helpers below print the service's answer and fail (non-zero) when it is an error or the
# service does not answer.
CURL := curl -sS --fail-with-body

health: ## Ask the running service whether it is healthy
	@$(CURL) $(BASE_URL)/health; status=$$?; echo; exit $$status

create-order: ## Place the README's example order
	@$(CURL) -X POST $(BASE_URL)/api/orders -H 'Content-Type: application/json' \
	  -d '{"customer_id":"customer-001","items":[{"product_id":"prod-001","name":"iPhone 15 Pro","quantity":1,"price":999.99}]}'; status=$$?; echo; exit $$status

get-status: ## Status of an order: make get-status WORKFLOW_ID=order-...
	@test -n "$(WORKFLOW_ID)" || { echo "usage: make get-status WORKFLOW_ID=order-..."; exit 2; }
	@$(CURL) "$(BASE_URL)/api/orders/status?workflow_id=$(WORKFLOW_ID)"; status=$$?; echo; exit $$status

cancel-order: ## Cancel an order: make cancel-order WORKFLOW_ID=order-...
	@test -n "$(WORKFLOW_ID)" || { echo "usage: make cancel-order WORKFLOW_ID=order-..."; exit 2; }
	@$(CURL) -X POST "$(BASE_URL)/api/orders/cancel?workflow_id=$(WORKFLOW_ID)"; status=$$?; echo; exit $$status

token: ## A development token (AUTH_MODE=jwt make dev): make token SUB=customer-001 [ROLE=operator]
	@test -n "$(SUB)" || { echo "usage: make token SUB=<customer id> [ROLE=operator]" >&2; exit 2; }
	@bash scripts/token.sh "$(SUB)" $(ROLE)

temporal-ui: ## Print the Temporal Web UI address
	@echo "Temporal Web UI: http://localhost:$(TEMPORAL_UI_PORT)"

logs: ## Follow the logs of `make dev` (and of the Temporal dev server, if it started one)
	@files=$$(ls .data/orderflow.log .data/psp.log .data/temporal.log 2>/dev/null); \
	  test -n "$$files" || { echo "no logs yet: run make dev first" >&2; exit 1; }; \
	  tail -n 100 -F $$files
