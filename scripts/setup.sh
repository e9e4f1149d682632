#!/usr/bin/env bash
# Create or refresh .venv from requirements.lock. Idempotent: a venv whose lock
# stamp matches is left alone, so demo.sh and test.sh can call this every time.
set -euo pipefail
cd "$(dirname "$0")/.."
export UV_PYTHON_DOWNLOADS=never UV_COMPILE_BYTECODE=1
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
stamp=.venv/.lock-stamp
want=$(cat requirements.lock pyproject.toml | sha256sum | cut -d' ' -f1)
if [ -x .venv/bin/python ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
echo "fh-screen: preparing .venv (first run takes about a minute)..." >&2
[ -x .venv/bin/python ] || "$PY" -m venv .venv
if .venv/bin/pip install -q --disable-pip-version-check uv==0.13.9 >/dev/null 2>&1; then
  .venv/bin/uv pip install -q --python .venv/bin/python -r requirements.lock -e .
else
  .venv/bin/pip install -q -r requirements.lock -e .
fi
echo "$want" > "$stamp"
