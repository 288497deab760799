#!/usr/bin/env bash
# The browser the status page's tests drive: Chromium and chromium-driver from Debian's
# packages (selenium itself is in scripts/python-requirements.txt, installed by
# scripts/python-env.sh). Idempotent: installed packages are checked with dpkg first, so a
# second run does nothing; downloaded .deb files are cached in ~/.cache/weft/apt/. Installing
# needs root (or sudo). Prints two lines: the chromium binary and the chromedriver binary.
set -euo pipefail
cache="${WEFT_CACHE:-$HOME/.cache/weft}"
packages=(chromium chromium-driver)

installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

missing() {
  local p out=()
  for p in "${packages[@]}"; do installed "$p" || out+=("$p"); done
  echo "${out[*]}"
}

install() {
  local todo
  todo="$(missing)"
  [ -z "$todo" ] && return 0
  local sudo=""
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || { echo "browser-env: installing $todo needs root or sudo" >&2; exit 1; }
    sudo="sudo"
  fi
  mkdir -p "$cache/apt/archives/partial"
  # The cache folder belongs to the caller, not to apt's sandbox user.
  local apt=(apt-get -y -q --no-install-recommends -o "Dir::Cache::archives=$cache/apt/archives" -o APT::Sandbox::User=root -o DPkg::Lock::Timeout=600)
  echo "browser-env: installing $todo from Debian's packages (once; cached in $cache/apt)" >&2
  # shellcheck disable=SC2086
  if ! $sudo env DEBIAN_FRONTEND=noninteractive "${apt[@]}" install $todo >&2; then
    $sudo apt-get -q -o DPkg::Lock::Timeout=600 update >&2
    # shellcheck disable=SC2086
    $sudo env DEBIAN_FRONTEND=noninteractive "${apt[@]}" install $todo >&2
  fi
}

if [ -n "$(missing)" ]; then
  mkdir -p "$cache/locks"
  (
    flock 9
    install
  ) 9>"$cache/locks/browser.lock"
fi

chromium="$(command -v chromium || true)"
driver="$(command -v chromedriver || true)"
[ -x "$chromium" ] || { echo "browser-env: chromium is not on PATH after installing it" >&2; exit 1; }
[ -x "$driver" ] || { echo "browser-env: chromedriver is not on PATH after installing chromium-driver" >&2; exit 1; }
echo "$chromium"
echo "$driver"
