#!/usr/bin/env bash
# Quick start, command 1: build a synthetic region and run the whole nightly job on it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/fhscreen demo --out "${1:-demo-output}"
