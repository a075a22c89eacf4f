"""Stages of ``scripts/run_benchmark.py``: corpora, training, evaluation, speed, report."""
