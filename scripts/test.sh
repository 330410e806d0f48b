#!/usr/bin/env bash
# The README's test command: sets everything up, then runs exactly what CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/system-deps.sh
bash scripts/setup.sh
export LERNA_REQUIRE_POSTGRES=1
echo "== ruff"; .venv/bin/ruff check src tests bench
.venv/bin/ruff format --check src tests bench
echo "== mypy"; .venv/bin/mypy
echo "== import layers"; .venv/bin/lint-imports
echo "== dashboard (vitest)"; (cd dashboard && npm test --silent)
echo "== pytest (SQLite and PostgreSQL)"; .venv/bin/pytest "$@"
