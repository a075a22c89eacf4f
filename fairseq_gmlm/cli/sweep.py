"""Compare decoding combinations of a trained gmlm_t5 checkpoint on a binarised split, loading it once.

    gmlm-sweep --data work/quickstart/data/bin --path work/quickstart/checkpoints/checkpoint_best.pt \
        --reference data/ding-de-en/valid.en --subset valid --max-iter 4 --out work/quickstart/sweep.md

Every combination of --decoder-init, --rejecter, --stutter-remask and --replacement (and 1 or 3 length
candidates for the best few) decodes the whole split; output is detokenized (sentencepiece) and scored with
sacreBLEU and chrF against the raw reference file. Prints and writes a markdown table sorted by BLEU.

With --compare, named sets of decoding flags are decoded instead of the grid, in the order given:

    gmlm-sweep ... --compare "prediction=--stop-rule prediction" "input=--stop-rule input"

Each set starts from --max-iter and one length candidate; its own flags override them. Candidate lengths are
capped as in the benchmark (split_decoding.LENGTH_FLAGS). Loading, decoding and scoring are the benchmark's
(split_decoding.py). ``--path gmlm.pt:ar.pt`` loads a t5_ar beside the GMLM, for sets that all rerank with it
(``--iter-decode-with-external-reranker``).
"""

import argparse
import itertools
import time
from pathlib import Path

from fairseq_gmlm.cli.split_decoding import Loaded, refuse_precision_flags, score, translate
from fairseq_gmlm.generation.rejecters import STUTTER_RULES


def combinations() -> list:
    """{decoder_init, rejecter, stutter_remask, replacement} for every distinct combination."""
    grid = itertools.product(["mask", "random"], ["passthrough", "linear"], STUTTER_RULES, ["previous", "initial"])
    # passthrough rejects nothing but the repeats of --stutter-remask on, so otherwise 'initial' decodes as 'previous'
    return [dict(decoder_init=init, rejecter=rejecter, stutter_remask=stutter, replacement=replacement)
            for init, rejecter, stutter, replacement in grid
            if not (rejecter == "passthrough" and replacement == "initial" and stutter != "on")]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True), parser.add_argument("--path", required=True)
    parser.add_argument("--reference", required=True, help="raw (detokenized) reference file of the split")
    parser.add_argument("--subset", default="valid"), parser.add_argument("--max-iter", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=200), parser.add_argument("--out")
    parser.add_argument("--compare", nargs="+", metavar="NAME=FLAGS", help="decode these flag sets instead of the grid")
    parser.add_argument("--src", default="de"), parser.add_argument("--tgt", default="en")
    args = parser.parse_args(argv)

    flag_sets = [parse_flag_set(text) for text in args.compare or []]  # refused before the model loads
    loaded = Loaded("translation_gmlm", args.path, args.data, args.src, args.tgt, [args.subset], "cpu", "fp32")
    sentences = len(loaded.task.dataset(args.subset))
    if flag_sets:
        table = compare(loaded, flag_sets, args, sentences)
    else:
        table = sweep(loaded, args, sentences)
    print(table)
    if args.out:
        Path(args.out).write_text(table, encoding="utf-8")


def parse_flag_set(text: str):
    name, separator, flags = text.partition("=")
    if not separator or not name:
        raise SystemExit(f"--compare takes NAME=FLAGS, got {text!r}")
    try:
        refuse_precision_flags(flags.split())
    except ValueError as error:
        raise SystemExit(f"--compare {text!r}: {error}") from None
    return name, flags.split()


def sweep(loaded: Loaded, args, sentences: int) -> str:
    rows = [run(loaded, combo, combo_flags(combo, 1), args, sentences) for combo in combinations()]
    rows.sort(key=lambda row: -row["bleu"])
    rows += [run(loaded, row["combo"], combo_flags(row["combo"], 3), args, sentences) for row in rows[:3]]
    rows.sort(key=lambda row: -row["bleu"])

    lines = ["| init | rejecter | stutter | replacement | lengths | BLEU | chrF | mean passes | seconds |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        c = row["combo"]
        lines.append(f"| {c['decoder_init']} | {c['rejecter']} | {c['stutter_remask']} | {c['replacement']} | "
                     f"{row['lengths']} | {row['bleu']:.2f} | {row['chrf']:.2f} | {row['passes']:.2f} | "
                     f"{row['seconds']:.1f} |")
    return "\n".join(lines) + footer(rows, args)


def compare(loaded: Loaded, flag_sets: list, args, sentences: int) -> str:
    rows = [run(loaded, name, flags, args, sentences) for name, flags in flag_sets]
    lines = ["| name | flags | BLEU | chrF | length ratio | repeats | mean passes | seconds |",
             "|---|---|---|---|---|---|---|---|"]
    for row, (_, flags) in zip(rows, flag_sets):
        lines.append(f"| {row['combo']} | `{' '.join(flags)}` | {row['bleu']:.2f} | {row['chrf']:.2f} | "
                     f"{row['length_ratio']:.3f} | {row['repeated_words']:.0%} | {row['passes']:.2f} | "
                     f"{row['seconds']:.1f} |")
    return "\n".join(lines) + footer(rows, args)


def footer(rows: list, args) -> str:
    return (f"\n\nsacreBLEU signature: {rows[0]['bleu_signature']}; chrF: {rows[0]['chrf_signature']}; "
            f"--iter-decode-max-iter {args.max_iter} unless set, split {args.subset}\n")


def combo_flags(combo: dict, length_candidates: int) -> list:
    return ["--iter-decode-with-beam", str(length_candidates)] + [
        f"--{name.replace('_', '-')}={value}" for name, value in combo.items()]


def run(loaded: Loaded, label, flags: list, args, sentences: int) -> dict:
    """Decode the split with --max-iter, one length candidate, then FLAGS (later flags win); score it."""
    import torch

    flags = ["--iter-decode-max-iter", str(args.max_iter), "--iter-decode-with-beam", "1", *flags]
    torch.manual_seed(1)  # --decoder-init random and sampling are seeded
    start = time.perf_counter()
    hypotheses, passes = translate(loaded, loaded.generator(flags), args.subset, list(range(sentences)),
                                   args.batch_size)  # gmlm's steps are its decoder passes
    lengths = [int(value) for flag, value in zip(flags, flags[1:]) if flag == "--iter-decode-with-beam"][-1]
    row = dict(combo=label, lengths=lengths, passes=sum(passes) / len(passes),
               seconds=time.perf_counter() - start, **score(hypotheses, args.reference))
    print({key: row[key] for key in ("combo", "lengths", "bleu", "chrf", "passes", "seconds")}, flush=True)
    return row


if __name__ == "__main__":
    main()
