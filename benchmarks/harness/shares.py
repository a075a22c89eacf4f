"""The quality target's figure: the GMLM's BLEU as a share of AR beam 4's, with a paired bootstrap interval.

A share read from one run rests on one test set: which sentences it holds moves both BLEUs. Drawing the sentences
again with replacement, the same draw for both systems (Koehn, "Statistical Significance Tests for Machine
Translation Evaluation", EMNLP 2004), and taking the ratio of the two corpus BLEUs on each draw gives the interval
that the choice of sentences alone puts around the share. It does not cover training noise (the seed, the update a
time budget stops at), which moves the AR baseline's BLEU by one to two points between saved states and sittings
(docs/training.md, "The AR baseline's recipe at 60 minutes").

BLEU is sacreBLEU's with its default signature: each sentence's sufficient statistics (hypothesis and reference
lengths, matching and total n-grams) summed over a draw give that draw's corpus BLEU, as sacreBLEU's own
``--paired-bs`` computes it (through the same two methods of its BLEU class, ``_extract_corpus_statistics`` and
``_compute_score_from_stats``).
"""

import functools
from pathlib import Path
from typing import Dict, List

import numpy as np

RESAMPLES = 1000
LEVEL = 0.95
SEED = 12345  # sacreBLEU's default for its bootstrap (SACREBLEU_SEED)


@functools.lru_cache(maxsize=1)
def bleu_metric():
    """sacreBLEU's BLEU with its default signature, built once (a share scores 2 x RESAMPLES draws)."""
    from sacrebleu.metrics import BLEU

    return BLEU()


def sentence_statistics(hypotheses: List[str], references: List[str]) -> np.ndarray:
    """S x 10: sacreBLEU's BLEU statistics of each sentence (summed over sentences they give the corpus BLEU)."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} references")
    return np.array(bleu_metric()._extract_corpus_statistics(hypotheses, [references]), dtype=np.float64)


def corpus_bleu(statistics: np.ndarray) -> float:
    """sacreBLEU's corpus BLEU from summed statistics (10,) or per-sentence ones (S x 10)."""
    summed = statistics.sum(0) if statistics.ndim == 2 else statistics
    return bleu_metric()._compute_score_from_stats(summed.tolist()).score


def bleu_share(system: List[str], baseline: List[str], references: List[str], resamples: int = RESAMPLES,
               level: float = LEVEL, seed: int = SEED) -> Dict[str, float]:
    """SYSTEM's corpus BLEU over BASELINE's on REFERENCES (one line each), and the central LEVEL interval of that
    ratio over RESAMPLES paired draws of the sentences: {"share", "low", "high", "bleu", "baseline_bleu",
    "resamples", "level"}."""
    return statistics_share(sentence_statistics(system, references), sentence_statistics(baseline, references),
                            resamples, level, seed)


def statistics_share(ours: np.ndarray, theirs: np.ndarray, resamples: int = RESAMPLES, level: float = LEVEL,
                     seed: int = SEED) -> Dict[str, float]:
    """``bleu_share`` from the two systems' sentence statistics (S x 10 each, the same sentences)."""
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    bleu, baseline_bleu = corpus_bleu(ours), corpus_bleu(theirs)
    if baseline_bleu == 0:
        raise ValueError("the baseline's BLEU is 0: a share of it is undefined")
    draws = np.random.default_rng(seed).integers(0, len(ours), size=(resamples, len(ours)))  # R x S
    ratios = np.array([corpus_bleu(ours[draw].sum(0)) / max(corpus_bleu(theirs[draw].sum(0)), 1e-9)
                       for draw in draws])  # R
    low, high = np.quantile(ratios, [(1 - level) / 2, (1 + level) / 2])
    return {"share": bleu / baseline_bleu, "low": float(low), "high": float(high), "bleu": bleu,
            "baseline_bleu": baseline_bleu, "resamples": resamples, "level": level}


def target_shares(hyp_dir, tests: dict, system: str, baseline: str) -> Dict[str, dict]:
    """{test set: bleu_share of SYSTEM over BASELINE (configuration keys)} from the evaluation stage's hypotheses
    (HYP_DIR/{test set}.{key}.txt) and each test set's "reference" file; {"share": None, ...} where the baseline's
    BLEU is 0 (a toy run), so the report says why there is no share."""
    shares = {}
    for corpus, test in tests.items():
        references = Path(test["reference"]).read_text(encoding="utf-8").splitlines()
        hypotheses = {key: (Path(hyp_dir) / f"{corpus}.{key}.txt").read_text(encoding="utf-8").splitlines()
                      for key in (system, baseline)}
        ours, theirs = (sentence_statistics(hypotheses[key], references) for key in (system, baseline))
        if corpus_bleu(theirs) == 0:
            shares[corpus] = {"share": None, "low": None, "high": None, "baseline_bleu": 0.0,
                              "resamples": RESAMPLES, "level": LEVEL}
        else:
            shares[corpus] = statistics_share(ours, theirs)
    return shares
