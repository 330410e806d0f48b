#!/usr/bin/env bash
# Sets up a fresh checkout: the virtual environment with the pinned dependencies, and the
# MovieLens-100K files (they ship inside the recbole wheel; see DESIGN.md). Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if ! "$PY" -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null; then
  echo "Python 3.11 or newer is needed (set PYTHON=/path/to/python3.11)" >&2
  exit 2
fi
if [ ! -x .venv/bin/python ]; then
  if ! "$PY" -m venv .venv 2>/dev/null; then
    # Debian splits venv out of the interpreter package.
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
      rm -rf .venv && "$PY" -m venv .venv
    else
      echo "python3 -m venv failed: install python3-venv (apt-get install python3-venv)" >&2
      exit 2
    fi
  fi
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[dev]"
.venv/bin/python -m pip install -q --no-deps recbole==1.2.1
.venv/bin/python -c 'from lerna.sim import movielens; movielens.data_dir()'
dist=src/lerna/server/static/dashboard/index.html
if [ -f "$dist" ] && [ -z "$(find dashboard/src dashboard/index.html dashboard/package-lock.json -newer "$dist" 2>/dev/null | head -n 1)" ]; then
  echo "dashboard build is up to date"
elif ! bash scripts/dashboard.sh; then
  # The API, the SDK and the demo work without it; the tests (scripts/test.sh) require it.
  echo "warning: the dashboard was not built (Node.js 20+ and npm are needed); the API still works" >&2
  [ -z "${CI:-}" ] || exit 1
fi
echo "setup done: .venv ready, MovieLens-100K installed, dashboard built"
