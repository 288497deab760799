#!/usr/bin/env bash
# `make bench-compare`: Weft against the Go OpenTelemetry Collector, side by side (issue 6).
#
# 1. Builds the peer — the upstream Collector at one release, with exactly the components the
#    comparison uses (benches/peer: main.go + go.mod/go.sum pinned) — into
#    ${WEFT_CACHE:-~/.cache/weft}/bin/otelcol-peer-<version>-<hash of its sources>, once; later runs reuse it.
# 2. Builds Weft (release) and the harness (weft-loadgen, weft-sink, weft-floor,
#    weft-bench-compare).
# 3. Runs weft-bench-compare, which writes the results sections of docs/BENCHMARKS.md and
#    docs/bench-compare.svg, and ends with one line per scenario,
#    `RESULT scenario=a throughput_ratio=… rss_ratio=… floor_pct=… max_throughput_ratio=…
#    common_rate=… runs_passed=W/N,C/N` (how many of Weft's and the Collector's runs at the
#    common rate passed: a ratio over a rate either one did not sustain reads too high).
#
# Arguments go to weft-bench-compare, e.g. a quick run:
#   bash scripts/bench-compare.sh --duration 10 --search-duration 5 --repeats 1
#   make bench-compare BENCH_ARGS="--scenarios a --repeats 1"
#   make bench-compare BENCH_ARGS="--scenarios f"      # file ingest only (filelog peer)
#   make bench-compare BENCH_ARGS="--scenarios m,s,g"  # metrics, spanmetrics, log governance
# The full default run (with the reference runs and the scaling run) takes 1.5–2 hours on
# 2 cores (scenario a alone took 21 minutes on December 5); `--repeats 2 --duration 15
# --search-duration 5` gives the same report for a,b,c,d in about 45 minutes, and
# `--no-floor`, `--no-default-gc-peer` and `--scaling ''` shorten it. It is never part of
# `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."

PEER_VERSION=0.161.0
CACHE="${WEFT_CACHE:-$HOME/.cache/weft}"
# Keyed by the peer's sources too: a component added to benches/peer builds a new binary.
PEER_KEY=$(cat benches/peer/go.mod benches/peer/go.sum benches/peer/main.go | sha256sum | cut -c1-12)
PEER_BIN="$CACHE/bin/otelcol-peer-$PEER_VERSION-$PEER_KEY"
CARGO="${CARGO:-cargo}"

if [[ ! -x "$PEER_BIN" ]]; then
    command -v go >/dev/null || {
        echo "bench-compare: Go is needed once to build the Collector peer (benches/peer); install Go >= 1.26" >&2
        exit 1
    }
    mkdir -p "$CACHE/bin"
    echo "bench-compare: building the OpenTelemetry Collector v$PEER_VERSION peer (first run only, a few minutes)..."
    start=$(date +%s.%N)
    (cd benches/peer &&
        GOPATH="$CACHE/go" GOMODCACHE="$CACHE/go/mod" GOCACHE="$CACHE/go/build" \
            GOFLAGS="-mod=readonly -modcacherw -buildvcs=false" GOTOOLCHAIN=local GOWORK=off \
            go build -trimpath -o "$PEER_BIN.tmp" .)
    mv "$PEER_BIN.tmp" "$PEER_BIN"
    end=$(date +%s.%N)
    awk -v s="$start" -v e="$end" 'BEGIN { printf "%.0f\n", e - s }' >"$PEER_BIN.build-seconds"
    echo "bench-compare: peer built in $(cat "$PEER_BIN.build-seconds") s -> $PEER_BIN"
else
    echo "bench-compare: reusing the cached peer $PEER_BIN"
fi
PEER_SECS=()
if [[ -f "$PEER_BIN.build-seconds" ]]; then
    PEER_SECS=(--peer-build-seconds "$(cat "$PEER_BIN.build-seconds")")
fi

# The file-ingest scenario's peer (benches/peer-filelog: the Collector with the filelog
# receiver) is a module of its own at FILE_PEER_VERSION: the module proxy does not serve
# pkg/stanza at PEER_VERSION. Built once into the cache, named by a hash of its sources; its
# Go modules and build cache live under the Weft cache, read-only go.mod/go.sum.
FILE_PEER_VERSION=0.165.1
FILE_PEER_SRC=benches/peer-filelog
FILE_PEER_HASH="$(cat "$FILE_PEER_SRC/main.go" "$FILE_PEER_SRC/go.mod" "$FILE_PEER_SRC/go.sum" | sha256sum | cut -c1-12)"
FILE_PEER_BIN="$CACHE/bin/otelcol-peer-filelog-$FILE_PEER_VERSION-$FILE_PEER_HASH"
if [[ ! -x "$FILE_PEER_BIN" ]]; then
    command -v go >/dev/null || {
        echo "bench-compare: Go is needed once to build the filelog peer (benches/peer-filelog)" >&2
        exit 1
    }
    mkdir -p "$CACHE/bin"
    echo "bench-compare: building the Collector v$FILE_PEER_VERSION filelog peer (first run only, several minutes)..."
    (cd "$FILE_PEER_SRC" &&
        GOPATH="$CACHE/go" GOMODCACHE="$CACHE/go/mod" GOCACHE="$CACHE/go/build" \
            GOFLAGS="-mod=readonly -modcacherw -buildvcs=false" GOTOOLCHAIN=local GOWORK=off \
            go build -trimpath -o "$FILE_PEER_BIN.tmp" .)
    mv "$FILE_PEER_BIN.tmp" "$FILE_PEER_BIN"
fi

echo "bench-compare: building Weft and the harness (release)..."
start=$(date +%s.%N)
"$CARGO" build --release -p weft --bin weft -p weft-benches --bins
end=$(date +%s.%N)
WEFT_SECS=$(awk -v s="$start" -v e="$end" 'BEGIN { printf "%.0f", e - s }')

# shellcheck disable=SC2086  # BENCH_ARGS is a list of flags on purpose
exec target/release/weft-bench-compare \
    --weft-bin target/release/weft \
    --peer-bin "$PEER_BIN" \
    --peer-version "$PEER_VERSION" \
    --file-peer-bin "$FILE_PEER_BIN" \
    --file-peer-version "$FILE_PEER_VERSION" \
    --weft-build-seconds "$WEFT_SECS" \
    "${PEER_SECS[@]}" \
    ${BENCH_ARGS:-} "$@"
