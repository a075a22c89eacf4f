"""Stage 1: the union training corpus of several parallel corpora, each test set kept apart.

Every corpus is a folder holding ``{train,valid,test}.{SRC,TGT}``. Training and valid sets are concatenated;
test sets are binarised as the subsets ``test``, ``test1``, ... in the order the corpora are given, and each
valid set also on its own as ``valid1``, ``valid2``, ... (``valid`` is the union, for the training loss).
``corpora.json`` maps each corpus name to its subsets and raw reference files (``tests``, ``valids``).
"""

import json
import logging
import os
import shutil
import subprocess
from pathlib import Path

from prepare_data import check_pairs, encode_file, train_sentencepiece

logger = logging.getLogger("benchmark.corpora")

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


def prepare(corpora, data_dir: Path, src: str, tgt: str, vocab_size: int, tiny: bool) -> dict:
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
