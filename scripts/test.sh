#!/usr/bin/env bash
# The whole test suite: set up .venv if needed, lint with ruff, then run pytest.
#   bash scripts/test.sh            everything (what CI runs)
#   bash scripts/test.sh --fast     the edit-test loop: leaves out the slow tier (end-to-end runs, agents at preset
#                                   sizes, mutation checks, non-default fidelity switches)
# Other arguments are passed to pytest.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
select=()
if [ "${1:-}" = "--fast" ]; then
  shift
  select=(-m "not slow")
fi
bash scripts/venv.sh
.venv/bin/ruff check src tests
set +e
.venv/bin/python -m pytest -n "${QCHUNK_TEST_WORKERS:-auto}" --dist worksteal "${select[@]}" "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "error: pytest collected no tests" >&2
  exit 1
fi
exit "$rc"
