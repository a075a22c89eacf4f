#!/usr/bin/env python
"""Raw parallel text -> joint sentencepiece model -> fairseq binaries (``fairseq-preprocess --joined-dictionary``).

    python scripts/prepare_data.py --raw data/ding-de-en --src de --tgt en --out work/ding --vocab-size 4000

expects ``RAW/{train,valid,test}.{SRC,TGT}`` (one sentence per line, line N of each side paired) and writes
``OUT/spm.model``, ``OUT/spm/{split}.{lang}`` (pieces) and ``OUT/bin/`` (what fairseq-train reads). Use
``--train-prefix/--valid-prefix/--test-prefix`` for files named otherwise. Re-running reuses what exists.

    python scripts/prepare_data.py --raw data/ding-de-en data/lohelp-de-en --src de --tgt en --out work/union

trains on the union of several corpora and keeps each one's test and valid sets apart (subsets ``test``,
``test1``, ... and ``valid1``, ``valid2``, ...; ``valid`` is the union), as ``OUT/corpora.json`` records.
"""

import argparse
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

logger = logging.getLogger("prepare_data")


def count_lines(path: str) -> int:
    with open(path, encoding="utf-8") as f:
        return sum(1 for _ in f)


def check_pairs(prefix: str, src: str, tgt: str) -> None:
    for lang in (src, tgt):
        if not os.path.isfile(f"{prefix}.{lang}"):
            raise SystemExit(f"missing {prefix}.{lang}: give --raw DIR holding {{train,valid,test}}.{{{src},{tgt}}}")
    n_src, n_tgt = count_lines(f"{prefix}.{src}"), count_lines(f"{prefix}.{tgt}")
    if n_src != n_tgt:
        raise SystemExit(f"{prefix}.{src} has {n_src} lines but {prefix}.{tgt} has {n_tgt}: the sides must pair line by line")


def train_sentencepiece(files, model_prefix: str, vocab_size: int, character_coverage: float) -> None:
    import sentencepiece as spm

    spm.SentencePieceTrainer.train(
        input=",".join(files), model_prefix=model_prefix, vocab_size=vocab_size, model_type="unigram",
        character_coverage=character_coverage, bos_id=-1, eos_id=-1, pad_id=-1, unk_id=0,
        input_sentence_size=2_000_000, shuffle_input_sentence=True, num_threads=os.cpu_count() or 1,
        hard_vocab_limit=False, minloglevel=2,
    )


def encode_file(processor, source: str, destination: str) -> None:
    with open(source, encoding="utf-8") as fin, open(destination, "w", encoding="utf-8") as fout:
        for line in fin:
            fout.write(" ".join(processor.encode(line.strip(), out_type=str)) + "\n")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--raw", nargs="+", help="folder with train/valid/test.{src,tgt}; several: trained on the union "
                                                 "of their train and valid sets, each test (valid) set binarised "
                                                 "apart as test, test1, ... (valid1, valid2, ...; see OUT/corpora.json)")
    parser.add_argument("--train-prefix"), parser.add_argument("--valid-prefix"), parser.add_argument("--test-prefix")
    parser.add_argument("--src", required=True), parser.add_argument("--tgt", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--vocab-size", type=int, default=4000)
    parser.add_argument("--character-coverage", type=float, default=1.0)
    parser.add_argument("--spm-model", help="reuse this sentencepiece model instead of training one")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s | %(name)s | %(message)s")
    if args.raw and len(args.raw) > 1:
        if args.train_prefix or args.valid_prefix or args.test_prefix or args.spm_model:
            raise SystemExit("several --raw folders take no --*-prefix or --spm-model")
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from benchmark.corpora import prepare

        prepare(args.raw, Path(args.out), args.src, args.tgt, args.vocab_size, tiny=False)
        return
    args.raw = args.raw[0] if args.raw else None

    prefixes = {}
    for split in ("train", "valid", "test"):
        given = getattr(args, f"{split}_prefix")
        if given is None and args.raw is None:
            raise SystemExit(f"give --raw DIR or --{split}-prefix")
        prefixes[split] = given or os.path.join(args.raw, split)
        check_pairs(prefixes[split], args.src, args.tgt)

    os.makedirs(os.path.join(args.out, "spm"), exist_ok=True)
    model = args.spm_model or os.path.join(args.out, "spm.model")
    if not os.path.exists(model):
        logger.info("training a joint sentencepiece model (%d pieces) on %s", args.vocab_size, prefixes["train"])
        train_sentencepiece(
            [f"{prefixes['train']}.{args.src}", f"{prefixes['train']}.{args.tgt}"],
            model[: -len(".model")], args.vocab_size, args.character_coverage,
        )
    elif args.spm_model and not os.path.exists(os.path.join(args.out, "spm.model")):
        shutil.copy(args.spm_model, os.path.join(args.out, "spm.model"))

    import sentencepiece as spm

    processor = spm.SentencePieceProcessor(model_file=model)
    for split, prefix in prefixes.items():
        for lang in (args.src, args.tgt):
            encode_file(processor, f"{prefix}.{lang}", os.path.join(args.out, "spm", f"{split}.{lang}"))

    bin_dir = os.path.join(args.out, "bin")
    if os.path.exists(os.path.join(bin_dir, f"test.{args.src}-{args.tgt}.{args.tgt}.idx")):
        logger.info("%s already holds the binaries; delete it to rebuild", bin_dir)
        return
    spm_dir = os.path.join(args.out, "spm")
    command = [
        shutil.which("fairseq-preprocess") or "fairseq-preprocess",
        "--source-lang", args.src, "--target-lang", args.tgt,
        "--trainpref", f"{spm_dir}/train", "--validpref", f"{spm_dir}/valid", "--testpref", f"{spm_dir}/test",
        "--destdir", bin_dir, "--joined-dictionary", "--workers", str(args.workers),
    ]
    logger.info("running %s", " ".join(command))
    subprocess.run(command, check=True)


if __name__ == "__main__":
    sys.exit(main())
