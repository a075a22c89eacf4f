#!/usr/bin/env bash
# The test command: create or reuse .venv, install the test requirements, run the whole suite on the CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup_env.sh requirements-test.txt
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
python -m pytest -q tests "$@"
