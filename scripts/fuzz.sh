#!/usr/bin/env bash
# Fuzzes Weft's untrusted inputs for a bounded time with cargo-fuzz (libFuzzer + AddressSanitizer):
#
#   otlp_protobuf  arbitrary bytes -> protobuf export requests -> validation -> round trip
#   otlp_json      arbitrary bytes -> OTLP/JSON export requests -> validation -> round trip
#   config         arbitrary text  -> load_config (YAML, ${env:..} expansion, every component)
#
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]
#   SECONDS is the total time, shared equally by the targets (default 60: CI's bounded run).
#
# Each target starts from the seed corpus kept in fuzz/corpus/<target>/ (and uses the
# dictionary fuzz/<target>.dict when there is one). What the fuzzer adds
# goes to a temporary copy, never into the repository. Exits non-zero if any target crashed
# (panic, stack overflow, sanitizer report, over 2 GiB RSS, or one input taking over 30 s); the
# crashing input is saved in fuzz/artifacts/<target>/ (git-ignored) and printed, and
# `cargo fuzz run <target> fuzz/artifacts/<target>/<file>` (from the repository root) replays it.
#
# Needs cargo-fuzz (installed here on first use, then cached by cargo) and the nightly toolchain
# for the sanitizer flags; without nightly, the default toolchain is used with
# RUSTC_BOOTSTRAP=1, which accepts the same flags (WEFT_FUZZ_TOOLCHAIN=stable forces that
# path; WEFT_FUZZ_TOOLCHAIN names any installed toolchain). Builds are cached in
# ${WEFT_CACHE:-~/.cache/weft}/fuzz-target so later runs only rebuild Weft's own crates.
set -euo pipefail
cd "$(dirname "$0")/.."

total=${1:-60}
[ $# -gt 0 ] && shift
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(otlp_protobuf otlp_json config)
per=$(( total / ${#targets[@]} ))
[ "$per" -ge 1 ] || per=1

CARGO_FUZZ_VERSION=0.13.2
if ! cargo fuzz --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
    echo "fuzz: installing cargo-fuzz $CARGO_FUZZ_VERSION"
    cargo install cargo-fuzz --locked --version "$CARGO_FUZZ_VERSION"
fi

# The toolchain: WEFT_FUZZ_TOOLCHAIN when set (e.g. `stable` to check the fallback below),
# else nightly when installed, else the default one. Any toolchain other than a nightly gets
# RUSTC_BOOTSTRAP=1 for the nightly-only flags (-Zsanitizer=address and friends).
want=${WEFT_FUZZ_TOOLCHAIN:-}
if [ -z "$want" ] && rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    want=nightly
fi
toolchain=()
case "$want" in
    nightly*) toolchain=(+"$want") ;;
    "")
        echo "fuzz: no nightly toolchain; using the default one with RUSTC_BOOTSTRAP=1"
        export RUSTC_BOOTSTRAP=1
        ;;
    *)
        echo "fuzz: using toolchain $want with RUSTC_BOOTSTRAP=1"
        toolchain=(+"$want")
        export RUSTC_BOOTSTRAP=1
        ;;
esac

target_dir=${WEFT_CACHE:-$HOME/.cache/weft}/fuzz-target
mkdir -p "$target_dir"
fuzz=(cargo "${toolchain[@]}" fuzz)

# One build for every target (they share all their dependencies).
echo "fuzz: building"
"${fuzz[@]}" build -O --target-dir "$target_dir"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=()
for t in "${targets[@]}"; do
    cp -r "fuzz/corpus/$t" "$work/$t"
    mkdir -p "fuzz/artifacts/$t"
    echo "fuzz: $t for ${per}s from $(ls "$work/$t" | wc -l) seeds"
    dict=()
    [ -f "fuzz/$t.dict" ] && dict=(-dict="fuzz/$t.dict")
    if "${fuzz[@]}" run -O --target-dir "$target_dir" "$t" "$work/$t" -- \
        -max_total_time="$per" -rss_limit_mb=2048 -timeout=30 -print_final_stats=1 "${dict[@]}" \
        >"$work/$t.log" 2>&1; then
        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$t.log" | tail -1)
        echo "fuzz: $t ok: ${execs:-?} executions, corpus $(ls "$work/$t" | wc -l) inputs"
    else
        failed+=("$t")
        echo "fuzz: $t FAILED; the end of its log:"
        tail -60 "$work/$t.log"
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: crashes in ${failed[*]} (inputs in fuzz/artifacts/)"
    exit 1
fi
echo "fuzz: no crashes in ${targets[*]}"
