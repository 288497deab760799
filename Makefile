# Weft: the two commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash
CARGO ?= cargo
export WEFT_BIN := $(CURDIR)/target/debug/weft

.PHONY: run run-default build test lint fmt bench python-env clean-cache

## run: the demo: Weft + local Jaeger + OpenSearch + a demo shop sending traces and logs
run:
	@bash scripts/demo.sh

## run-default: Weft alone on its embedded default configuration (OTLP in, debug output)
run-default: build
	$(WEFT_BIN)

build:
	$(CARGO) build -p weft --bin weft

## test: every test, integration tests included (real SDK clients in a cached venv, real
## Jaeger and OpenSearch started here and stopped afterwards), then CI's bounded fuzz run:
## each cargo-fuzz target for TEST_FUZZ_SECONDS/3 s (scripts/fuzz.sh; a crash fails the
## run; the fuzz build is cached in ~/.cache/weft/fuzz-target). TEST_FUZZ_SECONDS=0 skips it.
TEST_FUZZ_SECONDS ?= 180
test: build python-env browser-env
	@started=0; bash scripts/services.sh status >/dev/null 2>&1 || started=1; \
	bash scripts/services.sh up || exit 1; \
	$(CARGO) test --workspace --no-fail-fast; status=$$?; \
	if [ $$started = 1 ]; then bash scripts/services.sh down; fi; \
	if [ "$(TEST_FUZZ_SECONDS)" != 0 ]; then \
		bash scripts/fuzz.sh $(TEST_FUZZ_SECONDS) || { echo "make test: the fuzz run failed (see above)"; status=1; }; \
	fi; \
	exit $$status

python-env:
	@bash scripts/python-env.sh >/dev/null

## browser-env: Chromium and chromium-driver from Debian's packages, for the status page's browser test (once; needs root or sudo)
.PHONY: browser-env
browser-env:
	@bash scripts/browser-env.sh >/dev/null

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

## bench: the criterion benches
bench:
	$(CARGO) bench -p weft-benches

## bench-compare: Weft vs the Go OpenTelemetry Collector (about 1.5 hours; builds and caches the peer; not part of test)
##   quick run: make bench-compare BENCH_ARGS="--duration 10 --search-duration 5 --repeats 1"
##   scenarios (--scenarios, default a,b,c,d,t,f): a tail sampling, b + logs, c pass-through,
##   d a with Weft's durable window, t two-tier agent, f file ingest; m metrics pass-through, s spanmetrics + tail sampling,
##   g log governance (transform + redaction): make bench-compare BENCH_ARGS="--scenarios m,s,g"
.PHONY: bench-compare
bench-compare:
	@bash scripts/bench-compare.sh

clean-cache:
	rm -rf $${WEFT_CACHE:-$$HOME/.cache/weft}

## fuzz: the cargo-fuzz targets (fuzz/) for FUZZ_SECONDS in all (default 60); fails on a crash
.PHONY: fuzz
FUZZ_SECONDS ?= 60
fuzz:
	@bash scripts/fuzz.sh $(FUZZ_SECONDS)

## services-up: install (cached) and start local Jaeger v2 and OpenSearch; addresses in target/services/env
.PHONY: services-up services-down
services-up:
	@bash scripts/services.sh up

## services-down: stop them
services-down:
	@bash scripts/services.sh down
