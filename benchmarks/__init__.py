"""The benchmark and ablation results of this repository (RESULTS.md, results.json, ANALYSIS.md) and, in
``harness/``, the code that produces them; run it from the repository root as ``python -m benchmarks.harness.run``
or ``python -m benchmarks.harness.ablate``."""
