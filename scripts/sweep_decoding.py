#!/usr/bin/env python
"""Compare decoding combinations of a trained gmlm_t5 checkpoint on a binarised split, loading it once.

    python scripts/sweep_decoding.py --data work/quickstart/data/bin --path work/quickstart/checkpoints/checkpoint_best.pt \
        --reference data/ding-de-en/valid.en --subset valid --max-iter 4 --out work/quickstart/sweep.md

Every combination of --decoder-init, --rejecter, --stutter-remask and --replacement (and 1 or 3 length
candidates for the best few) decodes the whole split; output is detokenized (sentencepiece) and scored with
sacreBLEU and chrF against the raw reference file. Prints and writes a markdown table sorted by BLEU.
Loading, decoding and scoring are the benchmark's (scripts/benchmark/systems.py and evaluate.py).
"""

import argparse
import itertools
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchmark.evaluate import score  # noqa: E402
from benchmark.systems import Config, Loaded, translate  # noqa: E402


def combinations() -> list:
    """{decoder_init, rejecter, stutter_remask, replacement} for every distinct combination."""
    grid = itertools.product(["mask", "random"], ["passthrough", "linear"], ["on", "off"], ["previous", "initial"])
    return [dict(decoder_init=init, rejecter=rejecter, stutter_remask=stutter, replacement=replacement)
            for init, rejecter, stutter, replacement in grid
            if not (rejecter == "passthrough" and replacement == "initial" and stutter == "off")]  # = 'previous'


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True), parser.add_argument("--path", required=True)
    parser.add_argument("--reference", required=True, help="raw (detokenized) reference file of the split")
    parser.add_argument("--subset", default="valid"), parser.add_argument("--max-iter", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=200), parser.add_argument("--out")
    parser.add_argument("--src", default="de"), parser.add_argument("--tgt", default="en")
    args = parser.parse_args(argv)

    loaded = Loaded("gmlm_raw", args.path, args.data, args.src, args.tgt, [args.subset], "cpu", "fp32")
    sentences = len(loaded.task.dataset(args.subset))
    rows = [run(loaded, combo, args, 1, sentences) for combo in combinations()]
    rows.sort(key=lambda row: -row["bleu"])
    rows += [run(loaded, row["combo"], args, 3, sentences) for row in rows[:3]]
    rows.sort(key=lambda row: -row["bleu"])

    lines = ["| init | rejecter | stutter | replacement | lengths | BLEU | chrF | mean passes | seconds |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        c = row["combo"]
        lines.append(f"| {c['decoder_init']} | {c['rejecter']} | {c['stutter_remask']} | {c['replacement']} | "
                     f"{row['lengths']} | {row['bleu']:.2f} | {row['chrf']:.2f} | {row['passes']:.2f} | "
                     f"{row['seconds']:.1f} |")
    table = "\n".join(lines) + (f"\n\nsacreBLEU signature: {rows[0]['bleu_signature']}; "
                                f"--iter-decode-max-iter {args.max_iter}, split {args.subset}\n")
    print(table)
    if args.out:
        Path(args.out).write_text(table, encoding="utf-8")


def run(loaded: Loaded, combo: dict, args, length_candidates: int, sentences: int) -> dict:
    flags = ["--iter-decode-max-iter", str(args.max_iter), "--iter-decode-with-beam", str(length_candidates)]
    flags += [f"--{name.replace('_', '-')}={value}" for name, value in combo.items()]
    config = Config("sweep", "gmlm", "gmlm_raw", args.max_iter + 1, flags)
    torch.manual_seed(1)  # --decoder-init random and sampling are seeded
    start = time.perf_counter()
    hypotheses, passes = translate(loaded, loaded.generator(config), config, args.subset, list(range(sentences)),
                                   args.batch_size)
    row = dict(combo=combo, lengths=length_candidates, passes=sum(passes) / len(passes),
               seconds=time.perf_counter() - start, **score(hypotheses, args.reference))
    print({key: row[key] for key in ("combo", "lengths", "bleu", "chrf", "passes", "seconds")}, flush=True)
    return row


if __name__ == "__main__":
    main()
