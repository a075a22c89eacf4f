"""The bench the experiments share: write a synthetic corpus, binarise it with fairseq-preprocess, train a tiny
model with fairseq-train (the project's real task, model and criterion), then decode many samples with the
project's generator and read the model's conditionals, in-process.

Every word of the synthetic corpora is a whole token (no sentencepiece); the target dictionary is joined with
the source one, as the project's recipe does.
"""

import argparse
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import torch

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = str(ROOT / "fairseq_gmlm")
BIN = Path(sys.executable).parent

# One tiny recipe for every experiment: what differs is the data, the updates and the --mask-ratio.
_COMMON = ["--optimizer", "adam", "--adam-betas", "(0.9, 0.98)", "--lr", "3e-3", "--lr-scheduler", "inverse_sqrt",
           "--warmup-updates", "100", "--batch-size", "64", "--dropout", "0", "--weight-decay", "0",
           "--disable-validation", "--no-epoch-checkpoints", "--save-interval", "100000", "--no-progress-bar",
           "--log-interval", "100", "--num-workers", "0", "--cpu"]
# exact distributions are the point: no label smoothing; decoder and encoder inputs carry absolute positions
TRAIN_FLAGS = ["--task", "translation_gmlm", "--arch", "gmlm_t5_tiny", "--position-input", "learned",
               "--encoder-positions", "--criterion", "gmlm_loss", "--label-smoothing", "0", *_COMMON]
AR_FLAGS = ["--task", "translation", "--arch", "t5_ar_tiny", "--criterion", "cross_entropy", *_COMMON]

Pair = Tuple[str, str]  # (source line, target line), words separated by spaces


def run(tool: str, *args) -> subprocess.CompletedProcess:
    """Run a console script of this environment (fairseq-train, ...) on one thread; raise with its stderr."""
    environment = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    command = [str(BIN / tool), *map(str, args)]
    result = subprocess.run(command, capture_output=True, text=True, env=environment)
    if result.returncode != 0:
        raise RuntimeError(f"{tool} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return result


def binarise(folder: Path, splits: Dict[str, Sequence[Pair]]) -> Path:
    """Write ``folder/raw/{split}.{src,tgt}`` and binarise them into ``folder/bin`` (joined dictionary)."""
    raw, data = folder / "raw", folder / "bin"
    if (data / "dict.tgt.txt").exists():
        return data
    raw.mkdir(parents=True, exist_ok=True)
    for split, pairs in splits.items():
        (raw / f"{split}.src").write_text("".join(f"{s}\n" for s, _ in pairs))
        (raw / f"{split}.tgt").write_text("".join(f"{t}\n" for _, t in pairs))
    if not set(splits) <= {"train", "valid", "test"}:
        raise ValueError(f"splits must be among train/valid/test, got {list(splits)}")
    run("fairseq-preprocess", "--source-lang", "src", "--target-lang", "tgt", "--joined-dictionary",
        "--destdir", data, "--workers", "1",
        *[arg for split in splits for arg in (f"--{split}pref", raw / split)])
    return data


def train(data: Path, save_dir: Path, updates: int, flags: Sequence[str] = (), *, seed: int = 1, ar: bool = False,
          validate_every: Optional[int] = None) -> Path:
    """Train a tiny gmlm_t5 (or, with ``ar``, a t5_ar) for ``updates`` updates; returns the checkpoint path.

    ``validate_every``: early stopping. Score the valid split every that many updates with the model's own
    training loss and return the checkpoint where it was lowest, instead of the last one."""
    last, best = save_dir / "checkpoint_last.pt", save_dir / "checkpoint_best.pt"
    if not last.exists():  # written when training ends
        recipe = AR_FLAGS if ar else TRAIN_FLAGS
        if validate_every:
            recipe = [f for f in recipe if f != "--disable-validation"] + [
                "--validate-interval-updates", str(validate_every), "--save-interval-updates", str(validate_every),
                "--keep-interval-updates", "1", "--best-checkpoint-metric", "loss"]
        run("fairseq-train", data, "--user-dir", PLUGIN, *recipe, "--max-update", updates, "--seed", seed,
            "--save-dir", save_dir, *flags)
    return best if validate_every else last


def train_all(jobs: Sequence[dict], workers: int = 2) -> List[Path]:
    """``train(**job)`` for each job, ``workers`` at a time (each on one thread); checkpoints in job order."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda job: train(**job), jobs))


@contextmanager
def one_thread():
    """Torch on one thread inside the block (as the experiments were measured), as before it afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class Model:
    """A trained checkpoint with its task, loaded once, in evaluation mode."""

    def __init__(self, checkpoint: Path, data: Path, task: str = "translation_gmlm"):
        from fairseq import checkpoint_utils, options, tasks, utils

        self.data, self.checkpoint, self.task_name = data, checkpoint, task
        parser = options.get_generation_parser(default_task=task)
        self.base_argv = [str(data), "--user-dir", PLUGIN, "--task", task, "--path", str(checkpoint), "--cpu"]
        args = options.parse_args_and_arch(parser, self.base_argv)
        utils.import_user_module(args)
        self.task = tasks.setup_task(args)
        models, _ = checkpoint_utils.load_model_ensemble([str(checkpoint)], task=self.task)
        self.models = [m.eval() for m in models]
        self.dictionary = self.task.target_dictionary

    def generator(self, flags: Sequence[str]):
        from fairseq import options

        parser = options.get_generation_parser(default_task=self.task_name)
        return self.task.build_generator(self.models, options.parse_args_and_arch(parser, self.base_argv + list(flags)))

    def batch(self, sources: Sequence[str]) -> dict:
        tokens = [self.task.source_dictionary.encode_line(line, add_if_not_exist=False).long() for line in sources]
        dataset = self.task.build_dataset_for_inference(tokens, [t.numel() for t in tokens])
        return dataset.collater([dataset[i] for i in range(len(tokens))])

    @torch.no_grad()
    @one_thread()
    def decode(self, sources: Sequence[str], flags: Sequence[str], seed: int = 1, batch_size: int = 500
               ) -> List[Tuple[str, ...]]:
        """One output per source line, in order (repeat a line to draw several samples from it)."""
        generator = self.generator(flags)
        torch.manual_seed(seed)
        outputs: List[Optional[Tuple[str, ...]]] = [None] * len(sources)
        for start in range(0, len(sources), batch_size):
            sample = self.batch(sources[start:start + batch_size])
            hypotheses = self.task.inference_step(generator, self.models, sample)
            for index, hypothesis in zip(sample["id"].tolist(), hypotheses):
                words = self.dictionary.string(hypothesis[0]["tokens"].int()).split()
                outputs[start + index] = tuple(words)
        return outputs

    @torch.no_grad()
    @one_thread()
    def conditionals(self, sources: Sequence[str], observed: Sequence[Sequence[Optional[str]]],
                     words: Sequence[str]) -> List[List[Optional[Dict[str, float]]]]:
        """The model's one-pass distribution over ``words`` at each hidden position (None in ``observed``) of
        each target, given its source and the visible words; probability it gives other words is left out, so
        a row may sum to less than one (the distance measures then count it as lost)."""
        vocab, model = self.task.vocab, self.models[0]
        sample = self.batch(sources)
        order = sample["id"].tolist()
        rows = [[vocab.mask if w is None else self.dictionary.index(w) for w in observed[i]] + [vocab.eos]
                for i in order]
        decoder_input = torch.tensor(rows)  # B x (L+1), every target of one length
        net_input = sample["net_input"]
        logits = model(net_input["src_tokens"], net_input["src_lengths"], decoder_input).logits
        probabilities = logits.float().softmax(-1)  # B x (L+1) x V
        ids = [self.dictionary.index(w) for w in words]
        result: List[List[Optional[Dict[str, float]]]] = [[] for _ in sources]
        for row, index in enumerate(order):
            for position, seen in enumerate(observed[index]):
                result[index].append(None if seen is not None else
                                     {w: float(probabilities[row, position, i]) for w, i in zip(words, ids)})
        return result


def refinement_flags(passes: int, rejecter: str = "linear", sampling: bool = False) -> List[str]:
    """fairseq-generate flags for ``passes`` decoder passes; stutter re-masking off (repeats are legitimate here). One
    canvas per batch (--length-group-size 0), as when RESULTS.md was made: groups give the same argmax outputs but
    draw a sampled pass's words in another order, so the recorded sampled figures would not reproduce."""
    flags = ["--iter-decode-max-iter", str(passes - 1), "--rejecter", rejecter, "--stutter-remask", "off",
             "--length-group-size", "0"]
    return flags + (["--sampling"] if sampling else [])


def markdown_table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    def cell(value):
        return f"{value:.3f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


@contextmanager
def figure(path: Path, **subplots):
    """Off-screen matplotlib axes (``plt.subplots(**subplots)``), laid out, saved to PATH and closed after the block."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    drawing, axes = plt.subplots(**subplots)
    try:
        yield axes
        drawing.tight_layout()
        drawing.savefig(path, dpi=110)
    finally:  # a failed plot must not leave its figure open
        plt.close(drawing)


def save(name: str, experiment, results: dict, out: Path) -> None:
    """An experiment's ``out/NAME.json`` and ``out/NAME.png``."""
    (out / f"{name}.json").write_text(json.dumps(results, indent=1))
    experiment.plot(results, out / f"{name}.png")


def main(experiment, argv=None) -> None:
    """The command line of one experiment module (its run, report, plot and SCALES): run, save, print."""
    name = Path(experiment.__file__).stem
    parser = argparse.ArgumentParser(description=experiment.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=ROOT / "work" / "science")
    parser.add_argument("--out", type=Path, default=ROOT / "science")
    parser.add_argument("--scale", choices=sorted(experiment.SCALES), default="full")
    args = parser.parse_args(argv)
    results = experiment.run(args.work / name, args.scale)
    save(name, experiment, results, args.out)
    print(experiment.report(results))
