#!/usr/bin/env bash
# The main job: set up .venv if needed, then run qchunk's quickstart on the embedded default.
# Extra arguments are passed to `qchunk quickstart` (see `.venv/bin/qchunk quickstart --help`).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/venv.sh"
exec "$root/.venv/bin/qchunk" quickstart "$@"
