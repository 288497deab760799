# Weft: the two commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash
CARGO ?= cargo
export WEFT_BIN := $(CURDIR)/target/debug/weft

.PHONY: run build test lint fmt bench python-env clean-cache

## run: build Weft and run it on its default configuration (OTLP on 4317/4318, debug output)
run: build
	@echo "Weft listens for OTLP on localhost:4317 (gRPC) and localhost:4318 (HTTP)."
	@echo "Health: http://localhost:13133/   Metrics: http://localhost:8888/metrics   Ctrl-C stops it."
	$(WEFT_BIN)

build:
	$(CARGO) build -p weft --bin weft

## test: every test, integration tests included (real SDK clients in a cached venv)
test: build python-env
	$(CARGO) test --workspace --no-fail-fast

python-env:
	@bash scripts/python-env.sh >/dev/null

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

## bench: the criterion benches
bench:
	$(CARGO) bench -p weft-benches

clean-cache:
	rm -rf $${WEFT_CACHE:-$$HOME/.cache/weft}
