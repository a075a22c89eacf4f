"""Stages 2 and 4: train the AR baseline, gmlm_t5 and stock cmlm_transformer at one size and one budget.

Every model gets the same data, vocabulary, optimiser, dropout, label smoothing and time budget; its final
checkpoint ``MODELS/<name>/final.pt`` is the average of its last ``--average-last`` saved states by update
count (default 1: the state at the stop alone; the same rule for every system). Within a budget of a few
epochs, averaging the last epoch checkpoints would mix in a far weaker model, so states are also saved every
``--save-every`` updates. The AR models are ``t5_ar`` at gmlm_t5's shape; CMLM is fairseq's own
``cmlm_transformer`` with gmlm_t5's d_model, heads, d_ff and layer counts. A system's own flags replace the shared
ones in place (``with_flags``), so a recorded command sets every flag once.
"""

import logging
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from benchmarks.harness.paths import ROOT, shown
from fairseq_gmlm.cli import PLUGIN

logger = logging.getLogger("benchmark.training")


MAX_TOKENS = 4096  # tokens per update at batch scale 1 (common_flags)
LAYER_COUNTS = ("encoder_layers", "decoder_layers")  # the counts of a preset that a benchmark may replace


def gmlm_shape(arch: str, layers: dict = None) -> dict:
    """d_model, heads, d_ff and layer counts of a gmlm_t5 preset (its config's defaults where it sets none).
    LAYERS: layer counts that replace the preset's, e.g. {"encoder_layers": 4, "decoder_layers": 2}."""
    from fairseq_gmlm.models.gmlm_t5 import ARCHITECTURES, GMLMT5Config

    if arch not in ARCHITECTURES:
        raise SystemExit(f"--arch {arch}: not a gmlm_t5 preset (choose from {', '.join(ARCHITECTURES)})")
    defaults = GMLMT5Config()
    shape = {name: ARCHITECTURES[arch].get(name, getattr(defaults, name))
             for name in ("d_model", "num_heads", "d_kv", "d_ff", *LAYER_COUNTS)}
    shape.update(layers or {})
    if shape["num_heads"] * shape["d_kv"] != shape["d_model"]:
        raise SystemExit(f"--arch {arch}: heads x d_kv != d_model, fairseq's transformer cannot match its shape")
    return shape


# The teacher's relative-position tables start deterministic and head-diverse, not as a random draw at std 2.0:
# measured as whole chains (teacher 13, GMLM 33, AR baseline 33 min more) with --seed 1 and 2, the GMLM went from
# 18.88 / 14.53 to 21.37 / 21.64 BLEU on LibreOffice-help test and the AR baseline from 34.97 / 23.80 to 41.46 / 42.12
# (docs/training.md, "Head-diverse relative-position tables for the teacher", 2026-12-05). A model that resumes the
# teacher's last state (the AR baseline, the ablations' twins) carries the same flag; its tables come from the
# teacher. A GMLM from scratch keeps the random draw: on sequence reversal the diverse tables learned slower.
TEACHER_RECIPE = ["--relative-attention-init", "diverse"]


def stock_shape_flags(shape: dict) -> list:
    """The same shape for fairseq's transformer / cmlm_transformer (one embedding shared by all)."""
    flags = ["--share-all-embeddings"]
    for side in ("encoder", "decoder"):
        flags += [f"--{side}-embed-dim", shape["d_model"], f"--{side}-ffn-embed-dim", shape["d_ff"],
                  f"--{side}-layers", shape[f"{side}_layers"], f"--{side}-attention-heads", shape["num_heads"]]
    return [str(flag) for flag in flags]


def common_flags(budget_minutes: float, max_update: int, tiny: bool, cpu: bool, save_every: int,
                 keep: int, dropout: float = 0.3, batch_scale: float = 1.0, amp: bool = False) -> list:
    """Optimiser, regularisation, budget, precision and checkpointing shared by every system. BATCH_SCALE: tokens per
    update as a share of MAX_TOKENS, with the warm-up's updates scaled the other way (the same tokens of warm-up).
    AMP: --amp (bfloat16 autocast on the CPU)."""
    # the warm-started GMLM's 400 (at half the tokens) measured against 100: 1.3-1.4 BLEU more on LibreOffice help
    # (docs/training.md, "The fine-tune's warm-up")
    warmup = (10 if tiny else 200) / batch_scale
    flags = ["--user-dir", PLUGIN, "--optimizer", "adam", "--adam-betas", "(0.9, 0.98)", "--clip-norm", "1.0",
             "--lr", "3e-3" if tiny else "1e-3", "--lr-scheduler", "inverse_sqrt",
             "--warmup-updates", str(round(warmup)), "--weight-decay", "0.0001", "--dropout", str(dropout),
             "--label-smoothing", "0.1", "--max-tokens", str(round(MAX_TOKENS * batch_scale)), "--max-epoch", "10000",
             "--stop-time-hours", f"{budget_minutes / 60:.4f}", "--keep-last-epochs", str(keep),
             "--save-interval-updates", str(save_every), "--keep-interval-updates", str(keep),
             # SAVE_EVERY 0: no save at an epoch's end either, only where training stops
             "--save-interval", "1" if save_every else "100000",
             "--num-workers", "0", "--seed", "1", "--ignore-unused-valid-subsets", "--no-progress-bar", "--log-format", "simple",
             "--log-interval", "10" if tiny else "100", "--max-source-positions", "256",
             "--max-target-positions", "256"]
    if max_update:
        flags += ["--max-update", str(max_update)]
    if cpu:
        flags.append("--cpu")
    if amp:
        flags.append("--amp")
    return flags


def pairs(flags) -> list:
    """FLAGS as [(flag, value or None)]: a word after a flag is its value unless it is a flag itself."""
    grouped = []
    for word in flags:
        if word.startswith("--"):
            grouped.append((word, None))
        elif grouped and grouped[-1][1] is None:
            grouped[-1] = (grouped[-1][0], word)
        else:
            raise ValueError(f"{word!r} follows no flag in {flags}")
    return grouped


def words(grouped) -> list:
    """[(flag, value or None)] back to the words of a command line: the inverse of :func:`pairs`."""
    return [word for flag, value in grouped for word in (flag, value) if word is not None]


def with_flags(flags, extra) -> list:
    """FLAGS with EXTRA's flags on them: a flag both set takes EXTRA's value in its place, the others are appended,
    so that every flag appears once in a recorded command (fairseq would take the last)."""
    merged = dict(pairs(flags))
    merged.update(pairs(extra))
    return words(merged.items())


def system_flags(kind: str, arch: str, layers: dict = None) -> list:
    """Task, model and criterion of one system: 'ar', 'cmlm', 'gmlm' or 't5_ar'; LAYERS as in :func:`gmlm_shape`."""
    shape = gmlm_shape(arch, layers)
    preset_overrides = words((f"--{name.replace('_', '-')}", str(count)) for name, count in (layers or {}).items())
    if kind == "ar":
        return ["--task", "translation", "--arch", "transformer", *stock_shape_flags(shape),
                "--criterion", "label_smoothed_cross_entropy"]
    if kind == "cmlm":
        return ["--task", "translation_lev", "--noise", "random_mask", "--arch", "cmlm_transformer",
                *stock_shape_flags(shape), "--apply-bert-init", "--criterion", "nat_loss", "--length-loss-factor", "0.1"]
    if kind == "gmlm":
        return ["--task", "translation_gmlm", "--arch", arch, *preset_overrides, "--criterion", "gmlm_loss"]
    if kind == "t5_ar":
        return ["--task", "translation", "--arch", arch.replace("gmlm_t5", "t5_ar"), *preset_overrides,
                "--criterion", "label_smoothed_cross_entropy"]
    raise ValueError(f"unknown system kind {kind!r}")


def train(name: str, data_bin: str, save_dir: Path, flags: list, average_last: int, resume=None,
          minutes_left=None) -> Path:
    """fairseq-train into SAVE_DIR (resumes from checkpoint_last.pt), then average into final.pt. RESUME: a checkpoint
    a new run starts from, copied in as its checkpoint_last.pt (fairseq counts the training minutes saved in it);
    MINUTES_LEFT: the minutes it trains on from there, over which a budget_linear schedule decays (it starts afresh
    on another schedule's state, fairseq_gmlm/optim/budget_linear.py). SAVE_DIR/command.txt records the copy and the
    training command. A final.pt already there is kept, and a checkpoint_last.pt resumed, unless SAVE_DIR's command.txt
    trained them with other model flags (refused)."""
    if resume is not None and ("--lr-scheduler", "budget_linear") in pairs(flags):
        if minutes_left is None:
            raise ValueError(f"{name}: a budget_linear run resumed from {resume} needs minutes_left")
        flags = with_flags(flags, ["--decay-minutes", str(minutes_left)])
    command = [shutil.which("fairseq-train") or "fairseq-train", data_bin, *flags, "--save-dir", str(save_dir)]
    check_cached(name, save_dir, shown(command))
    final = save_dir / "final.pt"
    if final.exists():
        logger.info("skip %s: %s exists", name, final)
        return final
    save_dir.mkdir(parents=True, exist_ok=True)
    copy = ""
    if resume is not None:
        copy = shown(["cp", str(resume), str(save_dir / "checkpoint_last.pt")]) + "\n"
        if not (save_dir / "checkpoint_last.pt").exists():
            shutil.copy(resume, save_dir / "checkpoint_last.pt")
    (save_dir / "command.txt").write_text(copy + threads_prefix() + shown(command) + "\n")
    run_logged(name, command, save_dir / "train.log")
    average_checkpoints(last_states(save_dir, average_last), final)
    return final


# A recorded command's thread count (threads_prefix), at the start of a line.
THREADS_PREFIX = re.compile(r"^OMP_NUM_THREADS=(\d+) ", re.M)
# Flags whose values are paths: where a run's folders lie, not what it trains (a cached model may move).
PATH_FLAGS = ("--save-dir", "--init-from-ar")


def model_flags(command: str) -> dict:
    """{flag: value or None} of a fairseq-train COMMAND line (as shown; an OMP_NUM_THREADS=N prefix is skipped),
    without its data folder and PATH_FLAGS."""
    words = shlex.split(THREADS_PREFIX.sub("", command))
    flags = dict(pairs(words[2:]))
    return {flag: value for flag, value in flags.items() if flag not in PATH_FLAGS}


def check_cached(name: str, save_dir: Path, command: str) -> None:
    """Refuse SAVE_DIR's model (final or interrupted) where its command.txt trained it with other flags than COMMAND:
    a report would otherwise give this run's recipe for a model trained on another (say a changed harness default),
    or fairseq resume it under flags it did not start with."""
    recorded = save_dir / "command.txt"
    if not recorded.exists():
        return
    then, now = model_flags(recorded.read_text().splitlines()[-1]), model_flags(command)
    changed = sorted(flag for flag in then.keys() | now.keys() if flag_state(then, flag) != flag_state(now, flag))
    if changed:
        differences = "; ".join(f"{flag}: {flag_state(then, flag)} then, {flag_state(now, flag)} now" for flag in changed)
        raise SystemExit(f"{name}: the model in {save_dir} was trained with other flags than this run gives it "
                         f"({differences}). Give the options it was trained with, another --work, or delete "
                         f"{save_dir} to train it again")


def flag_state(flags: dict, flag: str) -> str:
    """FLAG's value in FLAGS as an error message gives it: the value, 'set' (a switch) or 'unset'."""
    return "unset" if flag not in flags else flags[flag] or "set"


def distill(work: Path, data_bin: str, teacher: Path, src: str, tgt: str, cpu: bool, max_tokens=None) -> str:
    """Stage 3: gmlm-distill re-translates DATA_BIN's training set with TEACHER (beam 4; MAX_TOKENS a batch, default
    gmlm-distill's) into WORK/distill; the command goes to WORK/distill.command.txt. Returns the distilled binaries'
    folder."""
    out = work / "distill"
    command = [sys.executable, "-m", "fairseq_gmlm.cli.distill", "--data", data_bin, "--path", str(teacher),
               "--out", str(out), "--src", src, "--tgt", tgt, "--beam", "4"]
    command += (["--max-tokens", str(max_tokens)] if max_tokens else []) + (["--cpu"] if cpu else [])
    (work / "distill.command.txt").write_text(shown(["python", *command[1:]]) + "\n")
    if subprocess.run(command, env=dict(os.environ, PYTHONPATH=python_path())).returncode != 0:
        raise SystemExit(f"distillation failed; see {out}")
    return str(out / "bin")


def python_path() -> str:
    """PYTHONPATH for a child job: the repository first, then whatever the caller's PYTHONPATH holds (packages
    installed with pip --target, say), so that the child imports what this process imports."""
    return os.pathsep.join([str(ROOT)] + [path for path in os.environ.get("PYTHONPATH", "").split(os.pathsep) if path])


def threads_prefix() -> str:
    """``OMP_NUM_THREADS=N `` where the environment sets it (as subprocess_threads does), so that a recorded
    command says how many threads it trained with; empty where it is unset."""
    threads = os.environ.get("OMP_NUM_THREADS")
    return f"OMP_NUM_THREADS={threads} " if threads else ""


def recorded_threads(save_dir: Path):
    """The threads SAVE_DIR's command.txt trained with (its OMP_NUM_THREADS prefix); None where it names none."""
    command_file = save_dir / "command.txt"
    match = THREADS_PREFIX.search(command_file.read_text()) if command_file.exists() else None
    return int(match.group(1)) if match else None


def mixed_data(work: Path, raw_bin: str, distilled_bin: str) -> str:
    """Distilled and raw training pairs together: WORK/mixed links every file of DISTILLED_BIN and adds RAW_BIN's
    training set as ``train1`` (fairseq-train concatenates train, train1, ...); valid and test stay as distilled
    (the same references). Both must share their dictionaries. Returns the folder."""
    raw, distilled, out = Path(raw_bin), Path(distilled_bin), work / "mixed"
    for name in sorted(path.name for path in raw.glob("dict.*.txt")):
        if (raw / name).read_bytes() != (distilled / name).read_bytes():
            raise SystemExit(f"{name} differs between {raw} and {distilled}: mixed data needs one vocabulary")
    out.mkdir(parents=True, exist_ok=True)
    links = {path.name: path for path in distilled.iterdir()}
    links.update({"train1" + path.name[len("train"):]: path for path in raw.glob("train.*")})
    for name, target in links.items():
        if not (out / name).exists():
            (out / name).symlink_to(target.resolve())
    return str(out)


@contextmanager
def subprocess_threads(threads: int):
    """OMP_NUM_THREADS=THREADS for every training and distilling subprocess started inside; the caller's value
    (or its absence) is restored after, so an in-process caller (a test) keeps its own."""
    before = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = str(threads)
    try:
        yield
    finally:
        if before is None:
            del os.environ["OMP_NUM_THREADS"]
        else:
            os.environ["OMP_NUM_THREADS"] = before


def run_logged(name: str, command: list, log_path: Path) -> None:
    """Run COMMAND with its output in LOG_PATH, echoing epoch summaries as progress. The child writes unbuffered
    and LOG_PATH is line-buffered, so the log of a running job is current (``tail -f`` works)."""
    start = time.time()
    environment = dict(os.environ, PYTHONPATH=python_path(), PYTHONUNBUFFERED="1")
    with open(log_path, "a", encoding="utf-8", buffering=1) as log:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                   env=environment)
        for line in process.stdout:
            log.write(line)
            if re.search(r"\| (train|valid) \| epoch|done training", line):
                print(f"  [{name} {time.time() - start:6.0f}s] {summarise(line)}", flush=True)
        if process.wait() != 0:
            raise SystemExit(f"training {name} failed (exit {process.returncode}); see {log_path}")


def summarise(line: str) -> str:
    line = line.split(" | INFO | ")[-1].strip()
    fields = [field for field in line.split(" | ") if re.match(r"(train|valid|epoch|loss|nll_loss|bleu|num_updates|done)", field)]
    return " | ".join(fields) or line[:160]


def last_states(save_dir: Path, count: int) -> list:
    """The COUNT newest saved states by update count, oldest first, ending with checkpoint_last.pt: the
    checkpoint_E_U.pt saved every --save-interval-updates and the epoch checkpoints checkpointE.pt (fairseq
    writes no interval save at an epoch's end, so both kinds are needed)."""
    import torch

    def updates(path: Path) -> int:
        interval = re.fullmatch(r"checkpoint_\d+_(\d+)\.pt", path.name)
        if interval:
            return int(interval.group(1))
        return torch.load(path, map_location="cpu", weights_only=False)["optimizer_history"][-1]["num_updates"]

    saved = [path for path in save_dir.glob("checkpoint*.pt") if re.fullmatch(r"checkpoint(_\d+_\d+|\d+)\.pt", path.name)]
    by_update = {updates(path): path for path in saved}
    last = save_dir / "checkpoint_last.pt"
    by_update[updates(last)] = last  # the stop may coincide with a save: the same state
    return [by_update[update] for update in sorted(by_update)][-count:]


def updates_of(checkpoint: Path) -> int:
    """The updates a fairseq checkpoint was trained for."""
    import torch

    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    return int(state["optimizer_history"][-1]["num_updates"])


def average_checkpoints(paths: list, output: Path) -> None:
    """Average the float parameters of PATHS into OUTPUT, keeping the last checkpoint's other fields."""
    import torch

    # fairseq's own files, read as saved (its loader would turn "cfg" into an OmegaConf object)
    states = [torch.load(path, map_location="cpu", weights_only=False) for path in paths]
    averaged = states[-1]
    for key, value in averaged["model"].items():
        if value.is_floating_point():
            averaged["model"][key] = sum(state["model"][key].float() for state in states).div(len(states)).to(value.dtype)
    averaged["averaged_from"] = [path.name for path in paths]
    partial = output.with_suffix(".tmp")
    torch.save(averaged, partial)
    os.replace(partial, output)
    logger.info("%s = average of %s", output, ", ".join(path.name for path in paths))
