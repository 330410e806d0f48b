#!/usr/bin/env bash
# The README's main job: set up, then run the whole stack on its embedded default with a
# simulated MovieLens-100K fleet. Extra arguments go to `lerna demo` (e.g. --devices 200).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/lerna demo "$@"
