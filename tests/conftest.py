"""Shared fixtures: small real corpora binarised by the real fairseq-preprocess, and a CLI runner."""

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = str(ROOT / "fairseq_gmlm")
BIN = Path(sys.executable).parent


def run_cli(tool: str, *args, check: bool = True, timeout: int = 600, input_text=None, env=None):
    """Run a fairseq console script (fairseq-train, ...) from this environment; returns CompletedProcess."""
    command = [str(BIN / tool), *map(str, args)]
    environment = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT), **(env or {}))
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, input=input_text, env=environment)
    if check and result.returncode != 0:
        raise AssertionError(f"{tool} failed ({result.returncode}):\n{result.stderr[-4000:]}")
    return result


def decoding_options(**changes):
    """RefinementOptions at the defaults users get (translation_gmlm's config, fairseq's generation flags) with
    CHANGES, unchecked."""
    from argparse import Namespace

    from fairseq_gmlm.tasks.translation_gmlm import TranslationGMLMConfig, refinement_options

    return refinement_options(TranslationGMLMConfig(), Namespace())._replace(**changes)


def gmlm_loss(task, **changes):
    """A gmlm_loss criterion for TASK at its config's defaults with CHANGES (as fairseq builds it)."""
    from fairseq_gmlm.criterions.gmlm_loss import GMLMLoss, GMLMLossConfig

    return GMLMLoss.build_criterion(GMLMLossConfig(**changes), task)


def slice_corpus(source_dir: Path, target_dir: Path, sizes: dict, src: str = "de", tgt: str = "en") -> None:
    target_dir.mkdir(parents=True, exist_ok=True)
    for split, count in sizes.items():
        for lang in (src, tgt):
            lines = (source_dir / f"{split}.{lang}").read_text(encoding="utf-8").splitlines()[:count]
            (target_dir / f"{split}.{lang}").write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture(scope="session")
def ding_slice(tmp_path_factory):
    """600/50/50 pairs of the bundled Ding corpus, through fairseq_gmlm.cli.prepare_data (sentencepiece + preprocess).

    50 test sentences: not a multiple of fairseq's default --required-batch-size-multiple of 8.
    """
    work = tmp_path_factory.mktemp("ding")
    slice_corpus(ROOT / "data" / "ding-de-en", work / "raw", {"train": 600, "valid": 50, "test": 50})
    subprocess.run(
        [sys.executable, "-m", "fairseq_gmlm.cli.prepare_data", "--raw", str(work / "raw"), "--src", "de",
         "--tgt", "en", "--out", str(work / "prepared"), "--vocab-size", "600", "--workers", "1"],
        check=True, capture_output=True,
        env=dict(os.environ, PATH=f"{BIN}:{os.environ['PATH']}", PYTHONPATH=str(ROOT)),
    )
    return work


def write_reversal_corpus(directory: Path, sizes: dict, vocab_size: int = 12, seed: int = 0) -> None:
    """A deterministic synthetic task: the target is the source sequence reversed."""
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(vocab_size)]
    directory.mkdir(parents=True, exist_ok=True)
    for split, count in sizes.items():
        sources, targets = [], []
        for _ in range(count):
            sentence = [rng.choice(words) for _ in range(rng.randint(4, 7))]
            sources.append(" ".join(sentence))
            targets.append(" ".join(reversed(sentence)))
        (directory / f"{split}.src").write_text("\n".join(sources) + "\n")
        (directory / f"{split}.tgt").write_text("\n".join(targets) + "\n")


@pytest.fixture(scope="session")
def reversal_corpus(tmp_path_factory):
    work = tmp_path_factory.mktemp("reversal")
    write_reversal_corpus(work / "raw", {"train": 3000, "valid": 100, "test": 100})
    run_cli(
        "fairseq-preprocess", "--source-lang", "src", "--target-lang", "tgt",
        "--trainpref", work / "raw" / "train", "--validpref", work / "raw" / "valid",
        "--testpref", work / "raw" / "test", "--destdir", work / "bin", "--joined-dictionary", "--workers", "1",
    )
    return work


TRAIN = ["--optimizer", "adam", "--lr", "3e-3", "--lr-scheduler", "inverse_sqrt", "--warmup-updates", "10",
         "--max-tokens", "2048", "--cpu", "--no-progress-bar", "--log-format", "simple", "--log-interval", "1",
         "--seed", "1", "--no-epoch-checkpoints", "--source-lang", "src", "--target-lang", "tgt", "--dropout", "0"]


def train(data, save_dir, *args):
    """fairseq-train on DATA (the reversal corpus's binaries) with TRAIN and ARGS; returns its log."""
    result = run_cli("fairseq-train", data, "--user-dir", PLUGIN, "--save-dir", save_dir, *TRAIN, *args, timeout=600)
    return result.stdout + result.stderr


def gmlm_args(*args):
    return ["--task", "translation_gmlm", "--arch", "gmlm_t5_tiny", "--criterion", "gmlm_loss", *args]


@pytest.fixture(scope="session")
def ar_checkpoint(reversal_corpus, tmp_path_factory):
    """t5_ar_tiny trained 120 updates on the reversal task: enough to carry knowledge into a warm start."""
    save_dir = tmp_path_factory.mktemp("ar")
    train(reversal_corpus / "bin", save_dir, "--task", "translation", "--arch", "t5_ar_tiny",
          "--criterion", "label_smoothed_cross_entropy", "--max-update", "120")
    return save_dir / "checkpoint_last.pt"


def build_task_and_model(data_dir: Path, *extra_args, arch: str = "gmlm_t5_tiny", words: int = 24, seed: int = 1):
    """Parse a real fairseq-train command line and build the task and an untrained gmlm_t5 model in-process.

    DATA_DIR gets a dictionary of WORDS symbols w0, w1, ...; words=None keeps the dictionary already there."""
    return build_from_flags(data_dir, ["--task", "translation_gmlm", "--arch", arch, "--criterion", "gmlm_loss",
                                       "--seed", str(seed), *map(str, extra_args)], words, seed)


def build_from_flags(data_dir: Path, flags: list, words: int = 24, seed: int = 1):
    """build_task_and_model for any task, model and criterion FLAGS: (task, untrained model, cfg)."""
    import torch
    from fairseq import options, tasks
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

    data_dir.mkdir(parents=True, exist_ok=True)
    for lang in ("src", "tgt") if words is not None else ():
        (data_dir / f"dict.{lang}.txt").write_text("".join(f"w{i} {1000 - i}\n" for i in range(words)))
    parser = options.get_training_parser()
    args = options.parse_args_and_arch(parser, [
        str(data_dir), "--user-dir", PLUGIN, "--source-lang", "src", "--target-lang", "tgt", "--cpu", *flags,
    ])
    cfg = convert_namespace_to_omegaconf(args)
    torch.manual_seed(seed)
    task = tasks.setup_task(cfg.task)
    model = task.build_model(cfg.model)
    return task, model, cfg
