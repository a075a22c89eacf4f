"""Stage 5: sacreBLEU and chrF of every configuration on every test set (detokenized, with signatures)."""

import logging
import time
from pathlib import Path

from benchmarks.harness.cache import cached_json
from benchmarks.harness.systems import TARGET_PASSES, decoding_flags, translate
from fairseq_gmlm.cli.split_decoding import score

logger = logging.getLogger("benchmark.evaluate")
EVAL_BATCH = 64


def evaluate(loaded: dict, configs: list, tests: dict, out_dir: Path) -> list:
    """One row per (test set, configuration); hypotheses are written to OUT_DIR/hyp/. Each row is also kept in
    OUT_DIR/rows/, so that a run cut short in this stage (a lent GPU's time limit) resumes at the next row; a row
    whose configuration's flags have changed since is scored again."""
    (out_dir / "hyp").mkdir(parents=True, exist_ok=True)
    return [cached_json(out_dir / "rows" / f"{corpus}.{config.key}.json",
                        lambda: evaluate_one(loaded[config.model], config, corpus, test, out_dir),
                        inputs=decoding_flags([config]))
            for corpus, test in tests.items() for config in configs]


def evaluate_one(system, config, corpus: str, test: dict, out_dir: Path) -> dict:
    import torch

    ids = list(range(test["sentences"]))
    generator = system.generator(config.flags)
    torch.manual_seed(1)  # random decoder initialisation and sampling are seeded
    start = time.perf_counter()
    hypotheses, passes = translate(system, generator, config, test["subset"], ids, EVAL_BATCH)
    seconds = time.perf_counter() - start
    (out_dir / "hyp" / f"{corpus}.{config.key}.txt").write_text("".join(h + "\n" for h in hypotheses))
    row = {"corpus": corpus, "config": config.key, "system": config.system, "passes": config.passes,
           "mean_passes": mean(passes), "sentences": len(hypotheses), "seconds": round(seconds, 3),
           **score(hypotheses, test["reference"])}
    logger.info("%s %-24s BLEU %6.2f chrF %6.2f passes %s (%.1fs)", corpus, config.key, row["bleu"],
                row["chrf"], row["mean_passes"], seconds)
    return row


def mean(values: list):
    values = [value for value in values if value is not None]
    return round(sum(values) / len(values), 3) if values else None


def evaluate_stage(loaded: dict, configs: list, tests: dict, valid: dict, out_dir: Path) -> dict:
    """Test rows, plus the valid-set rows of the AR baseline and the GMLM at the target passes; cached in scores.json."""
    on_valid = [config for config in configs if config.model == "ar" or config.key == f"gmlm_p{TARGET_PASSES}"]
    return cached_json(out_dir / "scores.json", lambda: {
        "test": evaluate(loaded, configs, tests, out_dir),
        "valid": evaluate(loaded, on_valid, {"valid": valid}, out_dir)}, inputs=decoding_flags(configs))
