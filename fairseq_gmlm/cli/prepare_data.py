"""Raw parallel text -> joint sentencepiece model -> fairseq binaries (``fairseq-preprocess --joined-dictionary``).

    gmlm-prepare-data --raw data/ding-de-en --src de --tgt en --out work/ding --vocab-size 4000

expects ``RAW/{train,valid,test}.{SRC,TGT}`` (one sentence per line, line N of each side paired) and writes
``OUT/spm.model``, ``OUT/spm/{split}.{lang}`` (pieces) and ``OUT/bin/`` (what fairseq-train reads). Use
``--train-prefix/--valid-prefix/--test-prefix`` for files named otherwise. Re-running reuses what exists.

    gmlm-prepare-data --raw data/ding-de-en data/lohelp-de-en --src de --tgt en --out work/union

trains on the union of several corpora and keeps each one's test and valid sets apart (subsets ``test``,
``test1``, ... and ``valid1``, ``valid2``, ...; ``valid`` is the union), as ``OUT/corpora.json`` records.
"""

import argparse
import json
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


# ---- several corpora (the benchmark harness, quickstart.sh) ------------------------------------------------
# Every corpus is a folder holding ``{train,valid,test}.{SRC,TGT}``. Training and valid sets are concatenated;
# test sets are binarised as the subsets ``test``, ``test1``, ... in the order the corpora are given, and each
# valid set also on its own as ``valid1``, ``valid2``, ... (``valid`` is the union, for the training loss).
# ``corpora.json`` maps each corpus name to its subsets and raw reference files (``tests``, ``valids``).

SPLITS = ("train", "valid", "test")
# --tiny: sentences kept per split of every corpus
TINY_SIZES = {"train": 400, "valid": 24, "test": 21}


def test_subset(index: int, split: str = "test") -> str:
    """fairseq-preprocess names the i-th of several --testpref (--validpref) files test, test1, test2, ..."""
    return split if index == 0 else f"{split}{index}"


def copy_raw(corpora, raw_dir: Path, src: str, tgt: str, sizes=None, split: str = "test") -> dict:
    """Write RAW/{train,valid}.{lang} (unions) and RAW/{test,valid}.{name}.{lang}; returns {name: subset info}
    of SPLIT's per-corpus files (the first corpus's test set is subset ``test``, its valid set ``valid1``)."""
    raw_dir.mkdir(parents=True, exist_ok=True)
    names = [Path(corpus).name for corpus in corpora]
    if len(set(names)) != len(names):
        raise SystemExit(f"--corpora: folder names must differ, got {names}")
    for corpus in corpora:
        check_corpus(corpus, src, tgt)
    for lang in (src, tgt):
        for union in ("train", "valid"):
            lines = [line for corpus in corpora for line in read_lines(Path(corpus) / f"{union}.{lang}", sizes, union)]
            write_lines(raw_dir / f"{union}.{lang}", lines)
        for name, corpus in zip(names, corpora):
            for apart in ("test", "valid"):
                write_lines(raw_dir / f"{apart}.{name}.{lang}", read_lines(Path(corpus) / f"{apart}.{lang}", sizes, apart))
    first = 0 if split == "test" else 1  # subset "valid" is the union
    return {
        name: {"subset": test_subset(first + i, split), "reference": str(raw_dir / f"{split}.{name}.{tgt}"),
               "source": str(raw_dir / f"{split}.{name}.{src}"),
               "sentences": len(read_lines(raw_dir / f"{split}.{name}.{tgt}"))}
        for i, name in enumerate(names)
    }


def check_corpus(corpus: str, src: str, tgt: str) -> None:
    missing = [f"{split}.{lang}" for split in SPLITS for lang in (src, tgt)
               if not os.path.isfile(os.path.join(corpus, f"{split}.{lang}"))]
    if missing:
        raise SystemExit(f"--corpora {corpus}: missing {', '.join(missing)} (each corpus folder needs "
                         f"{{train,valid,test}}.{{{src},{tgt}}}; see --src/--tgt)")
    for split in SPLITS:
        check_pairs(os.path.join(corpus, split), src, tgt)


def read_lines(path: Path, sizes=None, split=None) -> list:
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return lines[: sizes[split]] if sizes else lines


def write_lines(path: Path, lines) -> None:
    Path(path).write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def prepare_corpora(corpora, data_dir: Path, src: str, tgt: str, vocab_size: int, tiny: bool) -> dict:
    """Raw corpora -> joint sentencepiece -> DATA/bin; returns and writes DATA/corpora.json."""
    info_path = data_dir / "corpora.json"
    if info_path.exists():
        logger.info("skip: %s exists", info_path)
        return json.loads(info_path.read_text())
    raw_dir, spm_dir, bin_dir = data_dir / "raw", data_dir / "spm", data_dir / "bin"
    tests = copy_raw(corpora, raw_dir, src, tgt, TINY_SIZES if tiny else None)
    valids = copy_raw(corpora, raw_dir, src, tgt, TINY_SIZES if tiny else None, split="valid")
    spm_dir.mkdir(parents=True, exist_ok=True)
    model = data_dir / "spm.model"
    if not model.exists():
        train_sentencepiece([str(raw_dir / f"train.{src}"), str(raw_dir / f"train.{tgt}")],
                            str(model)[: -len(".model")], vocab_size, 1.0)
    encode_all(model, raw_dir, spm_dir, ["train", "valid"] + [f"{split}.{name}" for split in ("test", "valid")
                                                              for name in tests], (src, tgt))
    if bin_dir.exists():
        shutil.rmtree(bin_dir)  # an interrupted earlier run: corpora.json is written last
    test_prefixes = ",".join(str(spm_dir / f"test.{name}") for name in tests)
    valid_prefixes = ",".join([str(spm_dir / "valid")] + [str(spm_dir / f"valid.{name}") for name in valids])
    run_preprocess(["--source-lang", src, "--target-lang", tgt, "--trainpref", str(spm_dir / "train"),
                    "--validpref", valid_prefixes, "--testpref", test_prefixes,
                    "--destdir", str(bin_dir), "--joined-dictionary", "--workers", "1"])
    info = {"src": src, "tgt": tgt, "spm_model": str(model), "bin": str(bin_dir), "tests": tests, "valids": valids,
            "corpora": [str(Path(corpus).resolve()) for corpus in corpora],
            "train_pairs": len(read_lines(raw_dir / f"train.{src}"))}
    info_path.write_text(json.dumps(info, indent=1))
    return info


def encode_all(model: Path, raw_dir: Path, spm_dir: Path, prefixes, langs) -> None:
    import sentencepiece

    processor = sentencepiece.SentencePieceProcessor(model_file=str(model))
    for prefix in prefixes:
        for lang in langs:
            encode_file(processor, str(raw_dir / f"{prefix}.{lang}"), str(spm_dir / f"{prefix}.{lang}"))


def run_preprocess(arguments) -> None:
    tool = shutil.which("fairseq-preprocess")
    if tool is None:
        raise SystemExit("fairseq-preprocess not found: activate the environment (source .venv/bin/activate)")
    result = subprocess.run([tool, *arguments], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"fairseq-preprocess failed:\n{result.stderr[-3000:]}")


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
        prepare_corpora(args.raw, Path(args.out), args.src, args.tgt, args.vocab_size, tiny=False)
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
