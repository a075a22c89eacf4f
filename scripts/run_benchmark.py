#!/usr/bin/env python
"""Old command line of ``python -m benchmarks.harness.run`` (benchmarks/harness/run.py), kept for existing commands."""
import runpy
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
runpy.run_module("benchmarks.harness.run", run_name="__main__", alter_sys=True)
