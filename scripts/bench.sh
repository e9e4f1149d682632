#!/usr/bin/env bash
# The national-scale benchmark (benchmarks/bench_run.py): prepares .venv if needed, then
# generates a synthetic region (default 1M people, about 10M lab results) and times a
# full run and a chain of nightly deliveries (default 5). Arguments go to bench_run.py
# (--people/--patients, --nights, --work, --reuse), e.g. --people 3000000.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python benchmarks/bench_run.py "$@"
