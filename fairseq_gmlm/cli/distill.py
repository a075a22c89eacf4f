"""Sequence-level knowledge distillation (Kim & Rush, 2016): re-translate a training set with a teacher.

    gmlm-distill --data work/bench/data/bin --path work/bench/models/ar/final.pt --out work/bench/distill

decodes the ``--subset`` (default ``train``) of the binarised corpus DATA with the teacher checkpoint
(``fairseq-generate --beam 4``), and writes

- ``OUT/text/train.{SRC,TGT}``: the sources and the teacher's translations, in DATA's tokens (e.g. pieces);
- ``OUT/bin/``: fairseq binaries of that distilled training set made with DATA's own dictionaries, next to
  copies of DATA's other splits (valid, test, ...), so ``fairseq-train OUT/bin`` trains a student directly.

Any teacher fairseq can load works (``--task translation`` with a stock ``transformer``, or ``t5_ar``). A
sentence the teacher does not translate (fairseq skips over-long ones) keeps its original target; the number
is logged. Re-running reuses ``OUT/generate.SUBSET.txt`` and stops if ``OUT/bin`` is complete.
"""

import argparse
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

from fairseq_gmlm.cli import PLUGIN

logger = logging.getLogger("distill")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="binarised corpus (fairseq-preprocess output) with dict.*.txt")
    parser.add_argument("--path", required=True, help="teacher checkpoint")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--src", default="de"), parser.add_argument("--tgt", default="en")
    parser.add_argument("--subset", default="train", help="split to distill")
    parser.add_argument("--task", default="translation", help="the teacher's task")
    parser.add_argument("--user-dir", default=PLUGIN, help="plugin folder (fixes checkpoint loading on torch>=2.6)")
    parser.add_argument("--beam", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=8000)
    parser.add_argument("--max-len-a", type=float, default=1.5), parser.add_argument("--max-len-b", type=int, default=10)
    parser.add_argument("--cpu", action="store_true", help="decode on the CPU even where CUDA is available")
    parser.add_argument("--fp16", action="store_true", help="half-precision decoding (CUDA)")
    return parser.parse_args(argv)


def tool(name: str) -> str:
    found = shutil.which(name) or str(Path(sys.executable).parent / name)
    if not os.path.exists(found):
        raise SystemExit(f"{name} not found: activate the environment that has fairseq")
    return found


def check_inputs(args) -> None:
    for lang in (args.src, args.tgt):
        if not os.path.isfile(os.path.join(args.data, f"dict.{lang}.txt")):
            raise SystemExit(f"--data {args.data}: no dict.{lang}.txt (give a fairseq-preprocess output folder)")
        prefix = os.path.join(args.data, f"{args.subset}.{args.src}-{args.tgt}.{lang}")
        if not os.path.isfile(prefix + ".idx"):
            raise SystemExit(f"--data {args.data}: no {prefix}.idx (check --subset, --src, --tgt)")
    if not os.path.isfile(args.path):
        raise SystemExit(f"--path {args.path}: no such checkpoint")


def generate(args, out: Path) -> Path:
    """Run fairseq-generate on the subset once; returns its output file."""
    output = out / f"generate.{args.subset}.txt"
    if output.exists():
        logger.info("reusing %s", output)
        return output
    command = [tool("fairseq-generate"), args.data, "--user-dir", args.user_dir, "--task", args.task,
               "--path", args.path, "--gen-subset", args.subset, "-s", args.src, "-t", args.tgt,
               "--beam", str(args.beam), "--nbest", "1", "--max-tokens", str(args.max_tokens),
               "--max-len-a", str(args.max_len_a), "--max-len-b", str(args.max_len_b),
               "--required-batch-size-multiple", "1", "--skip-invalid-size-inputs-valid-test"]
    if args.cpu:
        command.append("--cpu")
    if args.fp16:
        command.append("--fp16")
    logger.info("decoding %s with beam %d: %s", args.subset, args.beam, " ".join(command))
    partial = output.with_suffix(".partial")
    with open(partial, "w", encoding="utf-8") as stdout:
        result = subprocess.run(command, stdout=stdout, stderr=subprocess.PIPE, text=True)
    if result.returncode != 0:
        raise SystemExit(f"fairseq-generate failed on --path {args.path}:\n{result.stderr[-3000:]}")
    partial.rename(output)
    return output


def read_hypotheses(path: Path) -> dict:
    """{sentence id: hypothesis tokens} from fairseq-generate's ``H-<id>\\tscore\\ttokens`` lines."""
    hypotheses = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("H-"):
                fields = line.rstrip("\n").split("\t")
                hypotheses[int(fields[0][2:])] = fields[2] if len(fields) > 2 else ""
    return hypotheses


def read_split(data: str, subset: str, src: str, tgt: str, lang: str) -> list:
    """The binarised sentences of one side as token strings, in corpus order."""
    from fairseq.data import Dictionary, data_utils

    dictionary = Dictionary.load(os.path.join(data, f"dict.{lang}.txt"))
    dataset = data_utils.load_indexed_dataset(os.path.join(data, f"{subset}.{src}-{tgt}.{lang}"), dictionary)
    return [dictionary.string(dataset[i]) for i in range(len(dataset))]


def write_text(args, hypotheses: dict, text_dir: Path) -> int:
    """Write the distilled pair of files; returns how many sentences kept their original target."""
    sources = read_split(args.data, args.subset, args.src, args.tgt, args.src)
    targets = read_split(args.data, args.subset, args.src, args.tgt, args.tgt)
    text_dir.mkdir(parents=True, exist_ok=True)
    kept = 0
    with open(text_dir / f"{args.subset}.{args.src}", "w", encoding="utf-8") as fsrc, \
            open(text_dir / f"{args.subset}.{args.tgt}", "w", encoding="utf-8") as ftgt:
        for i, (source, target) in enumerate(zip(sources, targets)):
            kept += i not in hypotheses
            fsrc.write(source + "\n")
            ftgt.write(hypotheses.get(i, target) + "\n")
    return kept


def binarise(args, text_dir: Path, bin_dir: Path) -> None:
    """fairseq-preprocess with DATA's dictionaries, then copy DATA's other splits next to it."""
    command = [tool("fairseq-preprocess"), "--source-lang", args.src, "--target-lang", args.tgt,
               "--trainpref", str(text_dir / args.subset), "--srcdict", os.path.join(args.data, f"dict.{args.src}.txt"),
               "--tgtdict", os.path.join(args.data, f"dict.{args.tgt}.txt"), "--destdir", str(bin_dir), "--workers", "1"]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"fairseq-preprocess failed:\n{result.stderr[-3000:]}")
    if args.subset != "train":  # fairseq-preprocess names the --trainpref split 'train'
        for suffix in (".bin", ".idx"):
            for lang in (args.src, args.tgt):
                name = f"{args.src}-{args.tgt}.{lang}{suffix}"
                os.replace(bin_dir / f"train.{name}", bin_dir / f"{args.subset}.{name}")
    for name in os.listdir(args.data):
        if name.endswith((".bin", ".idx")) and not name.startswith(f"{args.subset}."):
            shutil.copy(os.path.join(args.data, name), bin_dir / name)


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s | %(name)s | %(message)s")
    check_inputs(args)
    out = Path(args.out)
    bin_dir = out / "bin"
    done = bin_dir / f"{args.subset}.{args.src}-{args.tgt}.{args.tgt}.idx"
    if done.exists():
        logger.info("skip: %s exists", done)
        return
    out.mkdir(parents=True, exist_ok=True)
    hypotheses = read_hypotheses(generate(args, out))
    kept = write_text(args, hypotheses, out / "text")
    logger.info("distilled %d sentences; %d kept their original target (not translated by the teacher)",
                len(hypotheses), kept)
    binarise(args, out / "text", bin_dir)
    logger.info("wrote %s", bin_dir)


if __name__ == "__main__":
    main()
