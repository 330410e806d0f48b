#!/usr/bin/env bash
# Builds the dashboard (dashboard/, Vue 3 + Vite) into src/lerna/server/static/dashboard/, where the
# FL-API serves it at / (lerna.server.spa). Needs Node.js 20+ and npm (Debian: nodejs npm).
# Usage: bash scripts/dashboard.sh [--test]   (--test also runs the Vitest component tests)
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "Node.js and npm are needed to build the dashboard (apt-get install nodejs npm)" >&2
  exit 2
fi
if ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)'; then
  echo "Node.js 20 or newer is needed to build the dashboard (found $(node --version))" >&2
  exit 2
fi

cd dashboard
# The lock file pins every package; a clean install each time keeps builds reproducible.
npm ci --no-audit --no-fund --loglevel=error
if [ "${1:-}" = "--test" ]; then
  npm test --silent
fi
npm run build --silent -- --logLevel warn
echo "dashboard built into src/lerna/server/static/dashboard/"
