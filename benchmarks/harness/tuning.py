"""Stage 2 option ``--tune-ar``: train AR variants, keep the one with the best valid BLEU (beam 4).

A weak baseline proves nothing, so the AR recipe can be tuned first. The variants change only flags every
system shares (dropout, label smoothing, learning rate), and the winner's flags are then given to every
model, so all systems keep the same recipe and budget. Each variant costs one full training budget.
"""

import logging
from pathlib import Path

from benchmarks.harness.cache import cached_json

logger = logging.getLogger("benchmark.tuning")

# name -> flags appended to training.common_flags (dropout 0.3, label smoothing 0.1, lr 1e-3)
AR_VARIANTS = {
    "base": [],
    "dropout0.1": ["--dropout", "0.1"],
    "dropout0.2": ["--dropout", "0.2"],
    "smoothing0.2": ["--label-smoothing", "0.2"],
    "lr5e-4": ["--lr", "5e-4"],
}


def tune(variants: list, train, score, record_path: Path) -> dict:
    """TRAIN(name, flags) -> checkpoint and SCORE(checkpoint) -> {bleu, chrf} for each variant.

    Returns (and caches in RECORD_PATH) {"variants": {name: {flags, checkpoint, bleu, chrf}}, "chosen": name}.
    """
    return cached_json(record_path, lambda: train_and_score(variants, train, score))


def train_and_score(variants: list, train, score) -> dict:
    unknown = [name for name in variants if name not in AR_VARIANTS]
    if unknown:
        raise SystemExit(f"--tune-ar: unknown variants {unknown} (choose from {', '.join(AR_VARIANTS)})")
    results = {}
    for name in variants:
        checkpoint = train(f"ar-{name}", AR_VARIANTS[name])
        results[name] = {"flags": AR_VARIANTS[name], "checkpoint": str(checkpoint), **score(checkpoint)}
        logger.info("AR variant %s: valid BLEU %.2f", name, results[name]["bleu"])
    return {"variants": results, "chosen": max(results, key=lambda name: results[name]["bleu"])}
