#!/usr/bin/env bash
# Installs the real Filestack SDKs that tests/sdk_conformance.rs drives:
#   filestack-js 4.3.8      -> tests/sdk/node_modules  (from package.json + package-lock.json, `npm ci`)
#   filestack-python 4.0.0  -> tests/sdk/.venv         (a venv of python3.11, or python3 >= 3.8)
# Idempotent: does nothing when both are already installed at the pinned versions.
# Quiet: prints one line per SDK; on failure the tool's own output is shown.
# Needs: node >= 18 with npm, python3 with venv, and access to the npm registry and PyPI.
set -euo pipefail

JS_VERSION=4.3.8
PY_VERSION=4.0.0
DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$DIR"

die() { echo "tests/sdk/setup.sh: $*" >&2; exit 1; }

# run CMD... quietly; on failure show its output and return non-zero
try_quiet() {
  local log rc=0
  log="$(mktemp)"
  "$@" >"$log" 2>&1 || rc=$?
  if [[ $rc -ne 0 ]]; then cat "$log" >&2; fi
  rm -f "$log"
  return $rc
}
# same, but a failure ends the script
quiet() { try_quiet "$@" || die "failed: $*"; }

hash_of() { sha256sum "$@" | sha256sum | cut -d' ' -f1; }

# ---------------------------------------------------------------- filestack-js
command -v node >/dev/null || die "node not found (node 20 + npm needed)"
command -v npm >/dev/null || die "npm not found (node 20 + npm needed)"
js_stamp="node_modules/.refract-sdk-stamp"
js_want="$JS_VERSION $(hash_of package.json package-lock.json)"
if [[ -f "$js_stamp" && "$(cat "$js_stamp")" == "$js_want" ]] &&
   node -e "process.exit(require('./node_modules/filestack-js/package.json').version === '$JS_VERSION' ? 0 : 1)" 2>/dev/null; then
  echo "filestack-js $JS_VERSION: already installed"
else
  quiet npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
  node -e "process.exit(require('./node_modules/filestack-js/package.json').version === '$JS_VERSION' ? 0 : 1)" ||
    die "filestack-js $JS_VERSION not installed after npm ci"
  echo "$js_want" >"$js_stamp"
  echo "filestack-js $JS_VERSION: installed into tests/sdk/node_modules"
fi

# ---------------------------------------------------------------- filestack-python
py_ok() {
  [[ -x .venv/bin/python ]] &&
    .venv/bin/python -c "import filestack, sys; sys.exit(0 if filestack.__version__ == '$PY_VERSION' else 1)" 2>/dev/null
}
if py_ok; then
  echo "filestack-python $PY_VERSION: already installed"
else
  PY=""
  for cand in python3.11 python3; do
    if command -v "$cand" >/dev/null &&
       "$cand" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 8) else 1)' 2>/dev/null; then
      PY="$cand"
      break
    fi
  done
  [[ -n "$PY" ]] || die "python3 (>= 3.8, 3.11 preferred) not found"
  rm -rf .venv
  if ! "$PY" -m venv .venv >/dev/null 2>&1; then
    # Debian splits venv/ensurepip into python3.X-venv
    rm -rf .venv
    if [[ $EUID -eq 0 ]] && command -v apt-get >/dev/null; then
      pyver="$("$PY" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
      try_quiet apt-get install -y -qq "python${pyver}-venv" 2>/dev/null ||
        quiet bash -c "apt-get update -qq && apt-get install -y -qq python${pyver}-venv"
      quiet "$PY" -m venv .venv
    else
      die "'$PY -m venv' failed: install the python3-venv package"
    fi
  fi
  quiet .venv/bin/python -m pip install --quiet --disable-pip-version-check "filestack-python==$PY_VERSION"
  py_ok || die "filestack-python $PY_VERSION not importable from tests/sdk/.venv"
  echo "filestack-python $PY_VERSION: installed into tests/sdk/.venv"
fi
