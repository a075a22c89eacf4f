"""Experiment 3, masking ratio and sample efficiency: from N training pairs, how close do the learned conditionals
come to the true ones under a fixed low masking ratio (0.15, BERT's), a fixed 0.5, U(0,1) (the default) and
U(0.5,1)?

Data. The source is six field words (``u``/``n``/``d``: h_i = +0.8 / 0 / -0.8), the target six spins drawn from
the chain with those fields and coupling beta = 1. Training uses masks only (``--random-token-prob 0
--keep-prob 0``) and the same number of updates for every N and ratio, keeping the checkpoint with the
lowest loss on 500 held-out pairs (early stopping: with few pairs a network otherwise memorises them). Evaluation: fresh sources and true
targets with k = 1..6 positions hidden (k uniform), the model's one-pass distribution at each hidden position
against the exact conditional p(s_i | visible spins, source); mean KL(true || model) in nats.

    python -m science.masking_ratio --work work/science
"""

import random
import sys
from pathlib import Path
from typing import Dict, List

from science import distributions as dist
from science import lab

LENGTH = 6
BETA = 1.0
RATIOS = {"0.15": "0.15", "0.5": "0.5", "U(0,1)": "uniform", "U(0.5,1)": "0.5:1"}
SCALES = {"full": dict(sizes=(250, 1000, 4000), updates=1500, contexts=600),
          "small": dict(sizes=(2000,), updates=450, contexts=300)}
VALIDATE_EVERY = 100


def make_source(rng: random.Random) -> str:
    return dist.field_source(rng, LENGTH)


def joint(source: str) -> dist.Distribution:
    return dist.field_joint(source, BETA)


def corpus(count: int, rng: random.Random) -> List[lab.Pair]:
    return dist.sampled_pairs(count, lambda index, rng: make_source(rng), joint, rng)


def contexts(count: int, rng: random.Random):
    """(source, observed) pairs: a true target with k = 1..LENGTH positions hidden, k uniform."""
    result = []
    for _ in range(count):
        source = make_source(rng)
        target = dist.sample(joint(source), 1, rng)[0]
        hidden = set(rng.sample(range(LENGTH), rng.randint(1, LENGTH)))
        result.append((source, tuple(None if i in hidden else w for i, w in enumerate(target))))
    return result


def divergences(model: lab.Model, evaluation) -> Dict[str, float]:
    sources = [source for source, _ in evaluation]
    observed = [seen for _, seen in evaluation]
    learned = model.conditionals(sources, observed, list(dist.SPIN_WORDS.values()))
    by_hidden: Dict[int, List[float]] = {}
    for source, seen, predicted in zip(sources, observed, learned):
        true = dist.conditionals(joint(source), seen)
        hidden = sum(w is None for w in seen)
        for p, q in zip(true, predicted):
            if p is not None:
                by_hidden.setdefault(hidden, []).append(dist.kl_divergence(p, q))
    every = [value for values in by_hidden.values() for value in values]
    few = [value for k, values in by_hidden.items() if k <= 2 for value in values]
    many = [value for k, values in by_hidden.items() if k >= 4 for value in values]
    return {"all": sum(every) / len(every), "k<=2": sum(few) / len(few), "k>=4": sum(many) / len(many)}


def run(work: Path, scale: str = "full", seed: int = 1, ratios=tuple(RATIOS)) -> Dict:
    size = SCALES[scale]
    rng = random.Random(seed)
    evaluation = contexts(size["contexts"], random.Random(seed + 1000))
    pool = corpus(max(size["sizes"]), rng)  # the smaller training sets are prefixes of the largest
    held_out = corpus(500, rng)
    data = {count: lab.binarise(work / f"n{count}" / "data", {"train": pool[:count], "valid": held_out})
            for count in size["sizes"]}
    runs = [(count, name) for count in size["sizes"] for name in ratios]
    checkpoints = lab.train_all([
        dict(data=data[count], save_dir=work / f"n{count}" / name, updates=size["updates"], seed=seed,
             flags=("--mask-ratio", RATIOS[name], "--random-token-prob", "0", "--keep-prob", "0"),
             validate_every=VALIDATE_EVERY) for count, name in runs])
    rows = [dict(pairs=count, ratio=name, **divergences(lab.Model(checkpoint, data[count]), evaluation))
            for (count, name), checkpoint in zip(runs, checkpoints)]
    return {"scale": scale, "seed": seed, "updates": size["updates"], "contexts": size["contexts"], "rows": rows,
            "sizes": list(size["sizes"]), "ratios": list(ratios)}


def report(results: Dict) -> str:
    sizes = results["sizes"]
    header = ["masking ratio"] + [f"N = {n}" for n in sizes] + [f"N = {sizes[-1]}, k <= 2", f"N = {sizes[-1]}, k >= 4"]
    table = []
    for name in results["ratios"]:
        cells = {r["pairs"]: r for r in results["rows"] if r["ratio"] == name}
        table.append([name] + [cells[n]["all"] for n in sizes] + [cells[sizes[-1]]["k<=2"], cells[sizes[-1]]["k>=4"]])
    return (f"Mean KL(true || learned) of the one-pass conditionals, nats, over {results['contexts']} held-out "
            f"contexts (k = 1..{LENGTH} positions hidden, uniform); N training pairs, up to {results['updates']} "
            f"updates each, the checkpoint with the lowest held-out loss kept; the last two columns split the largest N by how many positions are hidden.\n\n"
            + lab.markdown_table(header, table))


def plot(results: Dict, path: Path) -> None:
    with lab.figure(path, figsize=(5.5, 3.6)) as axis:
        for name in results["ratios"]:
            rows = [r for r in results["rows"] if r["ratio"] == name]
            axis.plot([r["pairs"] for r in rows], [r["all"] for r in rows], marker="o", label=f"ratio {name}")
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("training pairs N")
        axis.set_ylabel("KL(true || learned), nats")
        axis.legend(fontsize=8)


if __name__ == "__main__":
    lab.main(sys.modules[__name__])
