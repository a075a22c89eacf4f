#!/usr/bin/env python
"""Compare decoding combinations of a trained gmlm_t5 checkpoint on a binarised split, loading it once.

    python scripts/sweep_decoding.py --data work/quickstart/data/bin --path work/quickstart/checkpoints/checkpoint_best.pt \
        --reference data/ding-de-en/valid.en --subset valid --max-iter 4 --out work/quickstart/sweep.md

Every combination of --decoder-init, --rejecter, --stutter-remask and --replacement (and 1 or 3 length
candidates for the best few) decodes the whole split; output is detokenized (sentencepiece) and scored with
sacreBLEU against the raw reference file. Prints and writes a markdown table sorted by BLEU.
"""

import argparse
import itertools
import time
from argparse import Namespace

import sacrebleu
import torch
from fairseq import checkpoint_utils, options, tasks, utils


def decode_split(task, models, generator, subset, batch_size):
    itr = task.get_batch_iterator(
        dataset=task.dataset(subset), max_sentences=batch_size, max_positions=(10**6, 10**6)
    ).next_epoch_itr(shuffle=False)
    hypotheses, passes = {}, []
    for sample in itr:
        for sentence_id, hypo in zip(sample["id"].tolist(), task.inference_step(generator, models, sample)):
            best = hypo[0]
            text = task.target_dictionary.string(best["tokens"].int(), "sentencepiece", extra_symbols_to_ignore={task.vocab.eos})
            hypotheses[sentence_id] = text
            passes.append(best["steps"])
    return [hypotheses[i] for i in range(len(hypotheses))], sum(passes) / len(passes)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True), parser.add_argument("--path", required=True)
    parser.add_argument("--reference", required=True, help="raw (detokenized) reference file of the split")
    parser.add_argument("--subset", default="valid"), parser.add_argument("--max-iter", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=200), parser.add_argument("--out")
    parser.add_argument("--src", default="de"), parser.add_argument("--tgt", default="en")
    args = parser.parse_args(argv)

    gen_parser = options.get_generation_parser()
    gen_args = options.parse_args_and_arch(gen_parser, [
        args.data, "--user-dir", "fairseq_gmlm", "--task", "translation_gmlm", "--path", args.path, "--cpu",
        "-s", args.src, "-t", args.tgt,
    ])
    utils.import_user_module(gen_args)
    task = tasks.setup_task(gen_args)
    task.load_dataset(args.subset)
    models, _ = checkpoint_utils.load_model_ensemble([args.path], task=task)
    references = [line.rstrip("\n") for line in open(args.reference, encoding="utf-8")]

    grid = list(itertools.product(["mask", "random"], ["passthrough", "linear"], [True, False], ["previous", "initial"]))
    rows = []
    for init, rejecter, stutter, replacement in grid:
        if rejecter == "passthrough" and replacement == "initial" and not stutter:
            continue  # nothing is rejected: identical to 'previous'
        combo = dict(decoder_init=init, rejecter=rejecter, stutter_remask=stutter, replacement=replacement)
        rows.append(run(task, models, combo, args, references, length_candidates=1))
    rows.sort(key=lambda row: -row["bleu"])
    for row in rows[:3]:
        rows.append(run(task, models, row["combo"], args, references, length_candidates=3))
    rows.sort(key=lambda row: -row["bleu"])

    lines = ["| init | rejecter | stutter | replacement | lengths | BLEU | chrF | mean passes | seconds |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        c = row["combo"]
        lines.append(f"| {c['decoder_init']} | {c['rejecter']} | {'on' if c['stutter_remask'] else 'off'} | "
                     f"{c['replacement']} | {row['lengths']} | {row['bleu']:.2f} | {row['chrf']:.2f} | "
                     f"{row['passes']:.2f} | {row['seconds']:.1f} |")
    signature = rows[0]["signature"]
    table = "\n".join(lines) + f"\n\nsacreBLEU signature: {signature}; --iter-decode-max-iter {args.max_iter}, split {args.subset}\n"
    print(table)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(table)


def run(task, models, combo, args, references, length_candidates):
    generator = task.build_generator(models, Namespace(
        iter_decode_max_iter=args.max_iter, iter_decode_with_beam=length_candidates, max_len_a=1.5, max_len_b=10, **combo
    ))
    torch.manual_seed(1)
    start = time.perf_counter()
    hypotheses, passes = decode_split(task, models, generator, args.subset, args.batch_size)
    seconds = time.perf_counter() - start
    if len(hypotheses) != len(references):
        raise SystemExit(f"{len(hypotheses)} hypotheses for {len(references)} references")
    bleu = sacrebleu.metrics.BLEU()
    score = bleu.corpus_score(hypotheses, [references])
    chrf = sacrebleu.metrics.CHRF().corpus_score(hypotheses, [references])
    row = dict(combo=combo, lengths=length_candidates, bleu=score.score, chrf=chrf.score, passes=passes,
               seconds=seconds, signature=str(bleu.get_signature()))
    print(row, flush=True)
    return row


if __name__ == "__main__":
    main()
