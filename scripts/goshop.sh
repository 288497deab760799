#!/usr/bin/env bash
# Builds the Go shop (examples/goshop: zap + zerolog + the OpenTelemetry Go SDK) from the Go
# module proxy, once, into ${WEFT_CACHE:-~/.cache/weft}/bin/goshop-<hash of its sources>, and
# prints the binary's path on stdout. Idempotent and safe to run in parallel (a lock); a
# change to main.go, go.mod or go.sum builds a new binary. As for Jaeger (scripts/services.sh):
# go.mod/go.sum are committed and read-only here (-mod=readonly), and GOPATH, the module and
# build caches live under the Weft cache. Progress goes to stderr.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd -P)"
cache="${WEFT_CACHE:-$HOME/.cache/weft}"
src="$root/examples/goshop"
hash="$(cat "$src/main.go" "$src/go.mod" "$src/go.sum" | sha256sum | cut -c1-12)"
bin="$cache/bin/goshop-$hash"

build() {
  [ -x "$bin" ] && return 0
  command -v go >/dev/null || { echo "goshop: go is not installed (needs Go >= 1.24)" >&2; exit 1; }
  mkdir -p "$cache/bin" "$cache/logs"
  local buildlog="$cache/logs/goshop-build.log" tmp="$bin.tmp.$$" t0=$SECONDS
  echo "goshop: building examples/goshop (first time only; log: $buildlog)" >&2
  if ! (cd "$src" &&
    GOPATH="$cache/go" GOMODCACHE="$cache/go/mod" GOCACHE="$cache/go/build" GOFLAGS="-mod=readonly -modcacherw -buildvcs=false" \
      GOTOOLCHAIN=local GOWORK=off CGO_ENABLED=0 \
      go build -trimpath -o "$tmp" .) >"$buildlog" 2>&1; then
    tail -n 20 "$buildlog" >&2
    rm -f "$tmp"
    echo "goshop: the build failed (full log: $buildlog)" >&2
    exit 1
  fi
  mv -f "$tmp" "$bin"
  echo "goshop: built in $((SECONDS - t0))s: $bin" >&2
}

mkdir -p "$cache/locks"
(
  flock 9
  build
) 9>"$cache/locks/goshop.lock"
echo "$bin"
