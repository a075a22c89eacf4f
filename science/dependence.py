"""Experiment 2, dependence needs passes: on an Ising-like chain the single parallel pass can at best produce the
product of the per-position marginals; the stronger the coupling beta, the further that is from the joint, and
the more passes sampling needs to come close.

Data. The source ``B<k>`` names a coupling beta_k; the target is six spins (``a``/``b``) drawn from the chain
p(s) ~ exp(beta_k * sum s_i s_(i+1)) (no fields, so both modes are equally likely). One model learns all the
couplings. Decoding samples (``--sampling``) and commits positions in a random order (``--rejecter random``,
the sampler the theory assumes) or by confidence (``--rejecter linear``, Mask-Predict's order); each
configuration draws the same number of sequences, whose empirical distribution is compared with the exact joint by total variation (TV). The
sampling floor is the TV that as many exact samples show.

    python -m science.dependence --work work/science
"""

import random
import sys
from pathlib import Path
from typing import Dict

from science import distributions as dist
from science import lab

LENGTH = 6
BETAS = (0.0, 0.5, 1.0, 2.0)
PASSES = (1, 2, 3, 4, 6)
REJECTERS = ("random", "linear")
TOLERANCE = 0.05  # "close": a TV within this of what one position per pass (6 passes) reaches
SCALES = {"full": dict(train=5000, samples=4000, updates=4000),
          "small": dict(train=2000, samples=800, updates=700)}


def joint(beta: float) -> dist.Distribution:
    return dist.chain_joint(beta, [0.0] * LENGTH)


def corpus(per_beta: int, rng: random.Random):
    pairs = [(f"B{k}", " ".join(words)) for k, beta in enumerate(BETAS)
             for words in dist.sample(joint(beta), per_beta, rng)]
    rng.shuffle(pairs)
    return pairs


def agreement(distribution: dist.Distribution) -> float:
    """The probability that two neighbouring positions hold the same spin (averaged over neighbours)."""
    return sum(p * sum(x == y for x, y in zip(w, w[1:])) / (LENGTH - 1) for w, p in distribution.items())


def passes_needed(rows, beta: float) -> int:
    """The fewest passes whose random-order samples come within TOLERANCE (in TV) of one position per pass: the
    model's own sequential sampler, the best its conditionals allow."""
    tvs = {r["passes"]: r["tv"] for r in rows if r["beta"] == beta and r["rejecter"] == "random"}
    return min(p for p, tv in tvs.items() if tv <= tvs[LENGTH] + TOLERANCE)


def run(work: Path, scale: str = "full", seed: int = 1) -> Dict:
    size = SCALES[scale]
    rng = random.Random(seed)
    data = lab.binarise(work / "data", {"train": corpus(size["train"], rng), "valid": corpus(10, rng)})
    model = lab.Model(lab.train(data, work / "model", size["updates"], seed=seed), data)
    chains, rows = {}, []
    for k, beta in enumerate(BETAS):
        exact = joint(beta)
        chains[str(beta)] = dict(floor=dist.expected_sampling_tv(exact, size["samples"], random.Random(seed)),
                                 product_tv=dist.total_variation(dist.product_of_marginals(exact), exact),
                                 agreement=agreement(exact), total_correlation=dist.total_correlation(exact))
        for rejecter, passes in ((r, p) for r in REJECTERS for p in PASSES):
            outputs = model.decode([f"B{k}"] * size["samples"], lab.refinement_flags(passes, rejecter, True), seed=seed)
            found = dist.empirical(outputs)
            rows.append(dict(beta=beta, passes=passes, rejecter=rejecter, tv=dist.total_variation(found, exact),
                             agreement=agreement(found)))
    return {"scale": scale, "seed": seed, "updates": size["updates"], "train_per_beta": size["train"],
            "samples": size["samples"], "chains": chains, "rows": rows,
            "passes_needed": {str(beta): passes_needed(rows, beta) for beta in BETAS}}


def report(results: Dict) -> str:
    rows = results["rows"]
    header = ["beta", "total correlation (nats)", "TV of the product of marginals", "sampling floor", "order"] + \
             [f"TV, {p} pass{'es' if p > 1 else ''}" for p in PASSES] + ["passes needed (random order)"]
    table = []
    for beta in BETAS:
        for rejecter in REJECTERS:
            cells = {r["passes"]: r for r in rows if r["beta"] == beta and r["rejecter"] == rejecter}
            chain = results["chains"][str(beta)]
            table.append([beta, chain["total_correlation"], chain["product_tv"], chain["floor"], rejecter]
                         + [cells[p]["tv"] for p in PASSES]
                         + [results["passes_needed"][str(beta)] if rejecter == "random" else ""])
    agreement_header = ["beta", "true"] + [f"{p} pass{'es' if p > 1 else ''}" for p in PASSES]
    agreement_table = [[beta, results["chains"][str(beta)]["agreement"]]
                       + [next(r["agreement"] for r in rows if r["beta"] == beta and r["passes"] == p
                               and r["rejecter"] == "random") for p in PASSES]
                       for beta in BETAS]
    return (f"Total variation between {results['samples']} sampled outputs and the exact joint (2^{LENGTH} "
            f"sequences); passes needed: the fewest whose random-order TV is within {TOLERANCE} of that of {LENGTH} "
            f"passes (one position per pass: the model's own sequential sampler). Tiny gmlm_t5, "
            f"{results['updates']} updates on {results['train_per_beta']} pairs per beta; `--sampling` with "
            f"`--rejecter random` (random order) or `linear` (confidence order).\n\n" + lab.markdown_table(header, table)
            + "\nNeighbour agreement P(s_i = s_(i+1)), true and sampled in random order:\n\n"
            + lab.markdown_table(agreement_header, agreement_table))


def plot(results: Dict, path: Path) -> None:
    with lab.figure(path, figsize=(5.5, 3.6)) as axis:
        for beta in BETAS:
            rows = [r for r in results["rows"] if r["beta"] == beta and r["rejecter"] == "random"]
            line, = axis.plot([r["passes"] for r in rows], [r["tv"] for r in rows], marker="o", label=f"beta = {beta}")
            axis.axhline(results["chains"][str(beta)]["floor"], color=line.get_color(), linestyle=":", linewidth=0.8)
        axis.set_xlabel("decoder passes")
        axis.set_ylabel("TV to the exact joint")
        axis.set_title("random-order sampling; dotted: the sampling floor", fontsize=9)
        axis.legend(fontsize=8)


if __name__ == "__main__":
    lab.main(sys.modules[__name__])
