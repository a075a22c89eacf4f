#!/usr/bin/env python
"""Old command line of ``python -m benchmarks.harness.ablate`` (benchmarks/harness/ablate.py), kept for existing commands."""
import runpy
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
runpy.run_module("benchmarks.harness.ablate", run_name="__main__", alter_sys=True)
