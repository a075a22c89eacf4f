#!/usr/bin/env bash
# The test command: create or reuse .venv, install the test requirements, run the whole suite on the CPU.
#
# Two pytest-xdist workers (PYTEST_WORKERS; 0 runs in this process), one thread each: most slow tests run a
# single-threaded fairseq command line, so one worker alone leaves a core idle. --dist loadscope keeps each
# module on one worker, so a module's trained fixtures are built once.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup_env.sh requirements-test.txt
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
python -m pytest -q -n "${PYTEST_WORKERS:-2}" --dist loadscope tests "$@"
