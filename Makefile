# OrderFlow. `make dev` runs the service, `make test` runs every test; both install and start
# what is missing (Temporal dev server, PostgreSQL). `make help` lists the rest.
.DEFAULT_GOAL := help
SHELL := /bin/bash
HTTP_PORT ?= 8080
TEMPORAL_UI_PORT ?= 8233
BASE_URL := http://localhost:$(HTTP_PORT)

.PHONY: help deps fmt lint test test-quick sqlx-prepare build dev chaos bench soak health create-order get-status cancel-order temporal-ui logs

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

health: ## Ask the running service whether it is healthy
	@curl -sS $(BASE_URL)/health; echo

create-order: ## Place the README's example order
	@curl -sS -X POST $(BASE_URL)/api/orders -H 'Content-Type: application/json' \
	  -d '{"customer_id":"customer-001","items":[{"product_id":"prod-001","name":"iPhone 15 Pro","quantity":1,"price":999.99}]}'; echo

get-status: ## Status of an order: make get-status WORKFLOW_ID=order-...
	@test -n "$(WORKFLOW_ID)" || { echo "usage: make get-status WORKFLOW_ID=order-..."; exit 2; }
	@curl -sS "$(BASE_URL)/api/orders/status?workflow_id=$(WORKFLOW_ID)"; echo

cancel-order: ## Cancel an order: make cancel-order WORKFLOW_ID=order-...
	@test -n "$(WORKFLOW_ID)" || { echo "usage: make cancel-order WORKFLOW_ID=order-..."; exit 2; }
	@curl -sS -X POST "$(BASE_URL)/api/orders/cancel?workflow_id=$(WORKFLOW_ID)"; echo

temporal-ui: ## Print the Temporal Web UI address
	@echo "Temporal Web UI: http://localhost:$(TEMPORAL_UI_PORT)"

logs: ## Follow the logs of `make dev` (and of the Temporal dev server it started)
	@tail -n 100 -F .data/orderflow.log .data/temporal.log
