#!/usr/bin/env bash
# Quick start, command 2: the whole test suite (the same command CI runs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/browser.sh || true
export GX_ANALYTICS_ENABLED=false AIRFLOW__CORE__LOAD_EXAMPLES=False TQDM_DISABLE=1
set +e
.venv/bin/python -m pytest -n 2 --dist loadfile --no-loadscope-reorder "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then echo "no tests collected" >&2; exit 1; fi
exit "$rc"
