"""Run the four experiments and write ``science/RESULTS.md`` with their tables and plots.

    python -m science.run_all                 # about 20 minutes on 2 cores (work files under work/science)
    python -m science.run_all --only dependence

Every experiment trains through fairseq-train with the project's task, model and criterion, and decodes with
the project's generator; a trained model is reused when its checkpoint exists (delete the work folder to
retrain). The readings below are what the tables show; tests/test_science.py asserts each at a small scale.
"""

import argparse
import json
import logging
import time
from pathlib import Path

from science import dependence, distillation, lab, masking_ratio, mode_mixing

EXPERIMENTS = {
    "mode_mixing": (mode_mixing, "1. Mode mixing",
                    "One parallel pass that samples mixes the two modes of almost every source (every position's "
                    "marginal is 1/2-1/2). Committing a few words per pass (linear rejecter) makes outputs coherent "
                    "within two or three passes; passing every prediction through converges much more slowly, "
                    "like parallel Gibbs sweeps. Argmax hides the problem on the repeat family (all positions break "
                    "the tie the same way) but not on the permutation family, where the first pass mixes too."),
    "dependence": (dependence, "2. Dependence needs passes",
                   "At beta = 0 the positions are independent and one pass already samples the joint; as beta "
                   "grows, the one-pass error approaches the product-of-marginals bound and more passes are needed "
                   "(random order). Confidence order (linear) is not a sampler: with sampling it drifts away from "
                   "the joint as passes grow, even at beta = 0, because keeping the more probable draw amplifies the "
                   "model's small biases."),
    "masking_ratio": (masking_ratio, "3. Masking ratio and sample efficiency",
                      "With enough data the ratios that cover many hidden positions (0.5, U(0,1)) learn the "
                      "conditionals best; 0.15 rarely hides four or more of six positions and learns those "
                      "contexts worst; U(0.5,1) rarely hides one or two. With few pairs and a fixed number of "
                      "updates, the higher ratios overfit most (many epochs over 250 pairs), so the theory's "
                      "sample-efficiency claim shows only once the network is not memorising."),
    "distillation": (distillation, "4. Distillation lowers dependence",
                     "Distilled targets are a function of the source, so one sampled pass no longer mixes modes: "
                     "single-pass failures fall several-fold, and more passes matter far less. Argmax decoding "
                     "fails rarely either way here, because the fields make one mode dominant for most sources."),
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=lab.ROOT / "work" / "science")
    parser.add_argument("--out", type=Path, default=lab.ROOT / "science")
    parser.add_argument("--only", choices=sorted(EXPERIMENTS), nargs="*", default=sorted(EXPERIMENTS))
    args = parser.parse_args(argv)
    logging.getLogger("matplotlib").setLevel(logging.WARNING)  # fairseq's logging setup lets its DEBUG lines through
    for name in args.only:
        module = EXPERIMENTS[name][0]
        started = time.time()
        results = module.run(args.work / name, "full")
        results["minutes"] = round((time.time() - started) / 60, 1)
        (args.out / f"{name}.json").write_text(json.dumps(results, indent=1))
        module.plot(results, args.out / f"{name}.png")
        print(f"{name}: {results['minutes']} min", flush=True)
    write_results(args.out)


def write_results(out: Path) -> None:
    sections = ["# Inside the chain: the paper's theory on distributions with known answers\n",
                "Four experiments on synthetic targets whose exact distribution is known, each training tiny "
                "`gmlm_t5` models (d_model 64, 2+2 layers, learned positions) with the real `fairseq-train` and "
                "decoding with the project's generator. Regenerate everything with `python -m science.run_all` "
                "(minutes per experiment below, on 2 shared cores).\n"]
    for name, (module, title, reading) in EXPERIMENTS.items():
        path = out / f"{name}.json"
        if not path.exists():
            continue
        results = json.loads(path.read_text())
        sections.append(f"## {title}\n\n{module.__doc__.strip().split(chr(10) + chr(10))[0]}\n\n"
                        f"{module.report(results)}\n**Reading.** {reading}\n\n![{title}]({name}.png)\n\n"
                        f"Script: `science/{name}.py`; {results.get('minutes', '?')} min.\n")
    (out / "RESULTS.md").write_text("\n".join(sections))


if __name__ == "__main__":
    main()
