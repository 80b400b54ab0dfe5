#!/usr/bin/env bash
# Create (or refresh) .venv in the repository root with qchunk and its pinned dependencies.
# Idempotent: a second run with unchanged pyproject.toml / constraints only checks a stamp file.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

py="${QCHUNK_PYTHON:-}"
if [ -z "$py" ]; then
  for cand in python3.11 python3 python; do
    if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import sys; sys.exit(sys.version_info[:2] not in [(3, 11), (3, 12)])'; then
      py="$cand"; break
    fi
  done
fi
if [ -z "$py" ]; then
  echo "error: qchunk needs Python 3.11 (or 3.12) on PATH; set QCHUNK_PYTHON=/path/to/python3.11" >&2
  exit 2
fi

extras="${QCHUNK_EXTRAS:-dev}"
stamp_src="$(cat pyproject.toml requirements/constraints.txt; echo "extras=$extras")"
stamp="$(printf '%s' "$stamp_src" | "$py" -c 'import hashlib,sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())')"

if [ -x .venv/bin/python ] && [ -f .venv/.qchunk-stamp ] && [ "$(cat .venv/.qchunk-stamp)" = "$stamp" ]; then
  exit 0
fi

if [ ! -x .venv/bin/python ]; then
  echo "[qchunk] creating .venv with $("$py" --version)" >&2
  "$py" -m venv .venv
fi
echo "[qchunk] installing qchunk[$extras] into .venv (pinned by requirements/constraints.txt)" >&2
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install --quiet --disable-pip-version-check \
  -c requirements/constraints.txt -e ".[$extras]"
printf '%s' "$stamp" > .venv/.qchunk-stamp.tmp && mv .venv/.qchunk-stamp.tmp .venv/.qchunk-stamp
