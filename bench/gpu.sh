#!/usr/bin/env bash
# The GPU check: paper-preset update throughput of qc, qc-fql and qam at S = 1 and 8 seeds, and the main job's
# 20K + 20K run with --sample-on device, timed; JSON to bench/results/gpu-update.json and gpu-e2e.json.
# At most 8 minutes (a hard limit: the parts finished by then are written).
#   bash bench/gpu.sh              # on a machine with a GPU and qchunk[cuda] in .venv (or $PYTHON)
#   bash bench/gpu.sh --dry-run    # tiny sizes on any backend (CPU too): checks the whole path
# Other options: --out-dir DIR, --dataset-dir DIR, --workers N, --parts update,e2e (see --help).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
[ -x "$PYTHON" ] || PYTHON=python3
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
exec timeout --signal=INT --kill-after=20 "${QCHUNK_GPU_LIMIT_S:-480}" "$PYTHON" -m qchunk.bench.gpu "$@"
