#!/usr/bin/env bash
# Two Weft configurations (or binaries) measured at the same time on the same core, for a
# difference too small for runs one after the other to resolve on a shared machine.
#
#   bash scripts/bench-pair.sh A.yaml B.yaml [--pairs N] [--rate R] [--duration S]
#                              [--payload traces|logs|metrics] [--bin-a W] [--bin-b W]
#                              [--clean DIR] [--no-build]
#
# Each round starts one Weft with A and one with B, both pinned to CPU 1, and gives each its
# own `weft-loadgen` at R items/s (CPU 0, with one `weft-sink` for both). Both processes share
# the core's interruptions — the hypervisor's steal, other tenants, the host's caches — so
# the ratio of their CPU seconds per million items accepted is far steadier than that of
# runs taken in turn (December 5: ±4 points per pair against ±12). Rounds alternate which
# configuration gets the first set of ports, which cancels what the slot itself costs.
#
# A and B are written for the first slot, as `make bench-compare` writes scenario configs:
# OTLP gRPC on 127.0.0.1:14317, the exporter to 127.0.0.1:14417, Weft's metrics on
# 127.0.0.1:18888, a `weft_status` endpoint (if any) on 127.0.0.1:15679. The second slot is
# the same file with those ports moved by 10000. CPU is the process's utime + stime from
# /proc from the start of the load until 7 s after it (the window has drained), divided by
# the items the load generator saw accepted. Prints each round, then the mean of B ÷ A − 1
# with its standard error. `--clean DIR` empties DIR before each round (a `file_storage`
# directory, so that no round replays the one before it). Weft and the harness are built
# (release) first unless `--no-build`.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
[[ $# -ge 2 ]] || usage
CFG_A=$(realpath "$1")
CFG_B=$(realpath "$2")
shift 2
PAIRS=10 RATE=60000 DURATION=15 PAYLOAD=traces
REL=target/release
BIN_A=$REL/weft BIN_B=$REL/weft
CLEAN=
BUILD=1
while [[ $# -gt 0 ]]; do
    case "$1" in
    --pairs) PAIRS=$2 ;;
    --rate) RATE=$2 ;;
    --duration) DURATION=$2 ;;
    --payload) PAYLOAD=$2 ;;
    --bin-a) BIN_A=$2 ;;
    --bin-b) BIN_B=$2 ;;
    --clean) CLEAN=$2 ;;
    --no-build)
        BUILD=
        shift
        continue
        ;;
    *) usage ;;
    esac
    shift 2
done
if [[ -n $BUILD ]]; then
    "${CARGO:-cargo}" build --release -q -p weft --bin weft -p weft-benches --bin weft-loadgen --bin weft-sink
fi

WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# $1 = config, $2 = slot (1 or 2): the config with its ports for that slot.
slot_config() {
    local out="$WORK/$(basename "$1" .yaml)-slot$2.yaml"
    if [[ $2 == 1 ]]; then
        cp "$1" "$out"
    else
        sed -e 's/127\.0\.0\.1:14317/127.0.0.1:24317/; s/127\.0\.0\.1:14417/127.0.0.1:24417/' \
            -e 's/127\.0\.0\.1:18888/127.0.0.1:28888/; s/127\.0\.0\.1:15679/127.0.0.1:25679/' \
            "$1" >"$out"
    fi
    echo "$out"
}

cpu_ticks() { awk '{print $14 + $15, $14}' "/proc/$1/stat"; }

# One round: $1/$2 the binary and config in slot 1, $3/$4 in slot 2. Writes
# "cpu1 user1 accepted1 cpu2 user2 accepted2" (ticks, ticks, items) to $WORK/round.
round() {
    if [[ -n $CLEAN ]]; then
        rm -rf "$CLEAN"
        mkdir -p "$CLEAN"
    fi
    taskset -c 0 "$REL/weft-sink" --grpc 127.0.0.1:14417 --grpc 127.0.0.1:24417 \
        --control 127.0.0.1:14418 >"$WORK/sink.log" 2>&1 &
    local sink=$!
    taskset -c 1 "$1" --config "$(slot_config "$2" 1)" >"$WORK/w1.log" 2>&1 &
    local w1=$!
    taskset -c 1 "$3" --config "$(slot_config "$4" 2)" >"$WORK/w2.log" 2>&1 &
    local w2=$!
    PIDS=("$sink" "$w1" "$w2")
    for port in 14317 24317; do
        for _ in $(seq 1 100); do
            (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
            sleep 0.1
        done
    done
    read -r c1a u1a < <(cpu_ticks "$w1")
    read -r c2a u2a < <(cpu_ticks "$w2")
    local lg=()
    for slot in 1 2; do
        taskset -c 0 "$REL/weft-loadgen" --endpoint "http://127.0.0.1:${slot}4317" \
            --payload "$PAYLOAD" --rate "$RATE" --duration "$DURATION" --streams 16 \
            --connections 4 >"$WORK/lg$slot.json" 2>"$WORK/lg$slot.err" &
        lg+=($!)
    done
    wait "${lg[@]}" || true
    sleep 7
    read -r c1b u1b < <(cpu_ticks "$w1")
    read -r c2b u2b < <(cpu_ticks "$w2")
    kill "$w1" "$w2" "$sink" 2>/dev/null || true
    wait "$w1" "$w2" "$sink" 2>/dev/null || true
    PIDS=()
    local acc1 acc2
    acc1=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["items_accepted"])' "$WORK/lg1.json")
    acc2=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["items_accepted"])' "$WORK/lg2.json")
    echo "$((c1b - c1a)) $((u1b - u1a)) $acc1 $((c2b - c2a)) $((u2b - u2a)) $acc2" >"$WORK/round"
}

RESULTS="$WORK/rounds"
: >"$RESULTS"
for i in $(seq 1 "$PAIRS"); do
    # Odd rounds: A in slot 1; even rounds: B in slot 1.
    if ((i % 2)); then
        round "$BIN_A" "$CFG_A" "$BIN_B" "$CFG_B"
        read -r ca ua na cb ub nb <"$WORK/round"
    else
        round "$BIN_B" "$CFG_B" "$BIN_A" "$CFG_A"
        read -r cb ub nb ca ua na <"$WORK/round"
    fi
    echo "$ca $ua $na $cb $ub $nb" >>"$RESULTS"
    awk -v i="$i" -v ca="$ca" -v ua="$ua" -v na="$na" -v cb="$cb" -v ub="$ub" -v nb="$nb" 'BEGIN {
        # Clock ticks are 1/100 s: CPU seconds per million items = ticks / 100 / items * 1e6.
        a = ca * 1e4 / na; b = cb * 1e4 / nb
        printf "round %d: A %.3f CPU s/M (%d accepted), B %.3f CPU s/M (%d accepted), B/A %+.1f%%\n",
            i, a, na, b, nb, 100 * (b / a - 1) }'
done
python3 - "$RESULTS" <<'PY'
import statistics as st, sys
rows = [list(map(float, l.split())) for l in open(sys.argv[1]) if l.strip()]
for name, (ia, ib) in (("CPU (user + system)", (0, 3)), ("user CPU", (1, 4))):
    d = [(r[ib] / r[5]) / (r[ia] / r[2]) - 1 for r in rows]
    if len(d) < 2:
        print(f"{name}: B/A {100 * d[0]:+.2f}% (one round: no error estimate)")
        continue
    m, se = st.mean(d), st.stdev(d) / len(d) ** 0.5
    print(f"{name}: B/A {100 * m:+.2f}% over {len(d)} rounds, standard error {100 * se:.2f}, "
          f"95% interval {100 * (m - 1.96 * se):+.2f}% … {100 * (m + 1.96 * se):+.2f}%, "
          f"median {100 * st.median(d):+.2f}%")
PY
