# prematch — the nightly prematching job. `make run` runs the whole night locally; `make test` runs every test.
SHELL := /bin/bash
.DEFAULT_GOAL := help

ROOT     := $(abspath .)
VENV     := $(ROOT)/.venv
LOCAL    := $(ROOT)/.local
ENVFILE  := $(LOCAL)/env
USERS    ?= 10000
REGIONS  ?= 4
SEED     ?= 42
# moto scans the whole table for every index Query: bigger pages make the local night faster.
export USER_PAGE_SIZE ?= 2500
export CARGO_TERM_COLOR ?= never
# Tests and make run share one debug target/ (never a release rebuild in tests).
export CARGO_TARGET_DIR ?= $(ROOT)/target
export PREMATCH_VENV ?= $(VENV)
export PATH := $(VENV)/bin:$(PATH)

.PHONY: help run test lint fmt build dev local-up local-down deps redis venv node-deps bench-engine bench-queue sam-validate clean-local

help:
	@echo "make run          the whole night locally on $(USERS) generated users (local Redis + moto)"
	@echo "make test         every test in the workspace (tests start their own Redis and moto)"
	@echo "make lint         cargo fmt --check + clippy -D warnings"
	@echo "make build        cargo lambda build --release (arm64 when the target is installed)"
	@echo "make dev          cargo lambda watch with the API routes (GET /api/prematch/check, POST /api/prematch/test)"
	@echo "make local-up / local-down   the private redis-server and moto server under .local/"
	@echo "make bench-engine / bench-queue   benchmarks that print their figures"

deps: redis venv node-deps

redis:
	@bash infra/local/stack.sh deps

venv:
	@bash infra/local/venv.sh

node-deps:
	@if [ -f tests/compat/package.json ]; then cd tests/compat && (npm ci --no-audit --no-fund --loglevel=error || npm install --no-audit --no-fund --loglevel=error); fi

local-up: venv
	@bash infra/local/stack.sh up

local-down:
	@bash infra/local/stack.sh down

run: local-up
	@cargo build -q -p prematch-cli
	@set -a; source $(ENVFILE); set +a; \
	  $(CARGO_TARGET_DIR)/debug/prematch night --users $(USERS) --regions $(REGIONS) --seed $(SEED) --fresh \
	    --event tests/fixtures/events/scheduled-event.json

test: deps
	bash infra/local/test-stack.sh
	cargo test --workspace --no-fail-fast

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

fmt:
	cargo fmt --all

build: venv
	@if rustup target list --installed 2>/dev/null | grep -q aarch64-unknown-linux-gnu; then \
	  cargo lambda build --release --arm64; else cargo lambda build --release; fi

dev: local-up
	@set -a; source $(ENVFILE); set +a; cargo lambda watch -A 127.0.0.1 -P 9000

# POPCNT/AVX2 build in its own target dir, so the normal debug build is not invalidated.
# networkx runs last, on a 3,000-user region (2,944 active): about 3 min here when quiet, 15-18 min
# while other builds run (single-threaded pure Python); NETWORKX_USERS=1500 or 0 (skip) for less.
NETWORKX_USERS ?= 3000
bench-engine: venv
	RUSTFLAGS="-C target-cpu=x86-64-v3" CARGO_TARGET_DIR=$(ROOT)/target/bench-v3 \
	  cargo run --release -p prematch-engine --example bench_engine -- \
	    --sizes 10000,100000,1000000 --networkx-users $(NETWORKX_USERS)

bench-queue: node-deps
	cargo bench -p prematch-queue --bench queue

sam-validate:
	@SAM_CLI_TELEMETRY=0 sam validate --lint --template template.yaml
