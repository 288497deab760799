#!/usr/bin/env bash
# Creates (once) the Python virtualenv with the official OpenTelemetry SDK that the
# integration tests and the demo use as real clients. Idempotent and cached:
# ~/.cache/weft/venv-<hash of the pinned requirements>. Prints the venv's python path.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
req="$here/python-requirements.txt"
cache="${WEFT_CACHE:-$HOME/.cache/weft}"
hash="$(sha256sum "$req" | cut -c1-12)"
venv="$cache/venv-$hash"
if [ ! -x "$venv/bin/python" ] || [ ! -f "$venv/.complete" ]; then
  mkdir -p "$cache"
  rm -rf "$venv"
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req" >&2
  touch "$venv/.complete"
fi
echo "$venv/bin/python"
