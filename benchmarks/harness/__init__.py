"""The benchmark harness: ``run.py`` (speed and quality against AR and CMLM) and ``ablate.py`` (which recipe
ingredients matter), with their stages: corpora, training, evaluation, speed, reports. Run from the repository
root, e.g. ``python -m benchmarks.harness.run --work work/bench-tiny --tiny``."""
