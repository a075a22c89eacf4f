"""Experiment 1, mode mixing: one parallel pass samples positions independently, so on two-mode targets it mixes
the modes; more passes that commit a few words at a time (the linear rejecter) repair that, passing every
prediction through does not.

Data. A source ``R q.. `` maps to ``a a a a a a`` or ``b b b b b b`` with probability 1/2 each; a source
``P x y`` (two distinct words) maps to one of two permutations of the same words, ``x y x y x y`` or
``y x y x y x``, 1/2 each: in both families every position's marginal is 1/2-1/2, so only the joint tells a
coherent output from a mixed one. An output is coherent when
it is one of the two modes of its source. Each training source is fresh, with one target drawn for it.

    python -m science.mode_mixing --work work/science   # or python -m science.run_all
"""

import random
import sys
from itertools import product
from pathlib import Path
from typing import Dict, List, Sequence

from science import distributions as dist
from science import lab

LENGTH = 6
FILLERS = [f"q{i}" for i in range(8)]
WORDS = [f"w{i}" for i in range(12)]
FAMILIES = ("repeat", "permutation")
PASSES = (1, 2, 3, 4, 6)
SCALES = {"full": dict(train=4000, test=100, samples=5, updates=3000),
          "small": dict(train=4000, test=30, samples=2, updates=2000)}


def make_source(family: str, rng: random.Random) -> str:
    if family == "repeat":
        return " ".join(["R"] + rng.choices(FILLERS, k=3))
    return " ".join(["P"] + rng.sample(WORDS, 2))


def modes(source: str) -> dist.Distribution:
    """The exact target distribution of a source."""
    head, *rest = source.split()
    if head == "R":
        return dist.two_modes(("a",) * LENGTH, ("b",) * LENGTH)
    first, second = rest
    return dist.two_modes((first, second) * (LENGTH // 2), (second, first) * (LENGTH // 2))


def corpus(count: int, rng: random.Random) -> List[lab.Pair]:
    """The two families in turn, each source with one target drawn from its two modes."""
    return dist.sampled_pairs(count, lambda index, rng: make_source(FAMILIES[index % 2], rng), modes, rng)


def incoherent_share(sources: Sequence[str], outputs: Sequence[tuple]) -> float:
    return sum(output not in modes(source) for source, output in zip(sources, outputs)) / len(sources)


def run(work: Path, scale: str = "full", seed: int = 1) -> Dict:
    size = SCALES[scale]
    rng = random.Random(seed)
    data = lab.binarise(work / "data", {"train": corpus(size["train"], rng), "valid": corpus(50, rng)})
    model = lab.Model(lab.train(data, work / "model", size["updates"], seed=seed), data)
    tests = {family: [make_source(family, rng) for _ in range(size["test"])] for family in FAMILIES}
    rows = []
    for sampling in (False, True):
        draws = size["samples"] if sampling else 1
        for rejecter in ("linear", "passthrough"):
            for passes in PASSES:
                row = dict(sampling=sampling, rejecter=rejecter, passes=passes)
                for family, sources in tests.items():
                    repeated = [s for s in sources for _ in range(draws)]
                    outputs = model.decode(repeated, lab.refinement_flags(passes, rejecter, sampling), seed=seed)
                    row[family] = incoherent_share(repeated, outputs)
                rows.append(row)
    return {"scale": scale, "seed": seed, "updates": size["updates"], "train_pairs": size["train"],
            "test_sources": size["test"], "samples_per_source": size["samples"], "rows": rows}


def report(results: Dict) -> str:
    header = ["decoding", "rejecter"] + [f"{p} pass{'es' if p > 1 else ''}" for p in PASSES]
    table_rows = []
    for sampling in (False, True):
        for rejecter in ("linear", "passthrough"):
            cells = {r["passes"]: r for r in results["rows"] if r["sampling"] == sampling and r["rejecter"] == rejecter}
            table_rows.append(["sampling" if sampling else "argmax", rejecter]
                              + [f"{cells[p]['repeat']:.0%} / {cells[p]['permutation']:.0%}" for p in PASSES])
    return (f"Share of incoherent outputs (neither mode of the source), repeat / permutation sources; "
            f"{results['test_sources']} test sources per family, {results['samples_per_source']} samples each when "
            f"sampling; tiny gmlm_t5, {results['updates']} updates on {results['train_pairs']} pairs.\n\n"
            + lab.markdown_table(header, table_rows))


def plot(results: Dict, path: Path) -> None:
    with lab.figure(path, ncols=2, figsize=(9, 3.5), sharey=True) as axes:
        for axis, family in zip(axes, FAMILIES):
            for sampling, (rejecter, style) in product((False, True), (("linear", "-"), ("passthrough", "--"))):
                rows = [r for r in results["rows"] if r["sampling"] == sampling and r["rejecter"] == rejecter]
                axis.plot([r["passes"] for r in rows], [r[family] for r in rows], style, marker="o",
                          label=f"{'sampling' if sampling else 'argmax'}, {rejecter}")
            axis.set_title(f"{family} sources")
            axis.set_xlabel("decoder passes")
        axes[0].set_ylabel("incoherent outputs")
        axes[1].legend(fontsize=8)


if __name__ == "__main__":
    lab.main(sys.modules[__name__])
