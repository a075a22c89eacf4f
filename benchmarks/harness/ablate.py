"""Which ingredients make the GMLM translate: every recipe variant trained for the same wall-clock budget.

    python -m benchmarks.harness.ablate --work work/ablate             # the full table (about 80 min, 2 CPU cores)
    python -m benchmarks.harness.ablate --work work/ablate-tiny --tiny # toy run, a few minutes

from the repository root (``python scripts/ablate.py`` runs the same).

Stages (each skips when its outputs exist, so rerunning the command resumes):
  1 prepare   union of --corpora (training, valid), joint sentencepiece; each corpus's valid set apart
  2 teacher   t5_ar at the GMLM's shape for --ar-minutes: the warm start of every warm variant and the
            distillation teacher
  3 distill   gmlm-distill (fairseq_gmlm/cli/distill.py): the training set re-translated by the teacher (beam 4);
            where a variant asks for mixed data, WORK/mixed links the distilled and the raw training pairs together;
            skipped where every variant trains on raw targets
  4 variants  each gmlm_t5 variant for --minutes; beside them the AR twin, the teacher trained on for
            --minutes more (so it gets at least the warm-started GMLM's total: --ar-minutes + --minutes). A
            variant that sets regularisation or schedule flags (TWIN_FLAGS) has its own twin, trained on with the same
            values, so that its "% of AR twin" compares like with like
  5 evaluate  sacreBLEU and chrF on every corpus's valid set: each variant at several pass counts, the AR twin
            and the teacher with beam 4 and greedy
  6 report    RESULTS.md, results.json and passes.png under --results

Training runs --parallel jobs at a time with --threads torch threads each (default 2 x 1 thread on 2 cores),
so every job gets the same share of the machine; each job's updates are reported.
"""

import argparse
import logging
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

from benchmarks.harness import evaluate, systems, training
from benchmarks.harness.cache import cached_json
from benchmarks.harness.paths import CORPORA, ROOT, shown
from benchmarks.harness.progress import Progress
from fairseq_gmlm.cli.prepare_data import prepare_corpora

logger = logging.getLogger("ablate")
STAGES = 6


def variant(description: str, position: str = "learned", data: str = "distill", warm: bool = True, flags=()) -> dict:
    """A recipe: the decoder's --position-input, the targets (distill, raw, or mixed: both), warm start or not,
    further flags."""
    return {"description": description, "data": data, "warm": warm, "flags": ["--position-input", position, *flags]}


# The best fine-tuning knobs measured on 2026-12-01 (docs/training.md): the later variants change one thing on them.
BEST = ["--mask-ratio", "0.5:1", "--lr", "2e-3"]
BEST_DESCRIPTION = "masking ratio from U(0.5, 1), peak learning rate 2e-3"


def on_best(change: str, flags=(), **recipe) -> dict:
    """A variant of the best recipe: BEST's flags and FLAGS, described as BEST_DESCRIPTION and CHANGE."""
    return variant(f"{BEST_DESCRIPTION}, {change}", flags=[*BEST, *flags], **recipe)


# Flags that set how a model is regularised or its learning rate scheduled. A variant that sets one is compared with
# an AR twin trained on with the same values: a twin without dropout gained 4.3 BLEU over one with it (docs/training.md,
# 2026-12-02), so a shared twin would flatter a GMLM without dropout.
TWIN_FLAGS = ("--dropout", "--label-smoothing", "--lr-scheduler")


def twin_pairs(flags) -> list:
    """[(flag, value)] of FLAGS that its AR twin trains with too: TWIN_FLAGS that have a value, in order."""
    return [(flag, value) for flag, value in training.pairs(flags) if flag in TWIN_FLAGS and value is not None]


def twin_flags(flags) -> list:
    """twin_pairs as the words of a command line."""
    return training.words(twin_pairs(flags))


def twin_name(flags) -> str:
    """The AR twin of a variant with FLAGS: "ar_twin", or e.g. "ar_twin_dropout0_label_smoothing0"."""
    return "ar_twin" + "".join(f"_{flag.lstrip('-').replace('-', '_')}{value}" for flag, value in twin_pairs(flags))


# One factor at a time around the base recipe (warm start, learned decoder positions, distilled targets).
VARIANTS = {
    "base": variant("warm start, learned positions, distilled"),
    "no_positions": variant("no position input", position="none"),
    "mask_range": variant("mask-range decoder start", position="mask-range"),
    "positional_attention": variant("positional attention", position="positional-attention"),
    "scratch": variant("from scratch (no warm start)", warm=False),
    "glancing": variant("glancing training (ratio 0.5)", flags=["--glancing-ratio", "0.5"]),
    "stages2": variant("--train-stages 2", flags=["--train-stages", "2"]),
    "raw": variant("raw (not distilled) targets", data="raw"),
    "lr5e-4": variant("peak learning rate 5e-4 instead of 1e-3", flags=["--lr", "5e-4"]),
    "inverse_ratio": variant("masked-diffusion loss weighting (1 / noise ratio)",
                             flags=["--loss-weighting", "inverse-ratio"]),
    "skips_length": variant("cross-attention skips the <length> state (PaDIR)",
                            flags=["--cross-attention-skips-length"]),
    "mask_high": variant("masking ratio drawn from U(0.5, 1) instead of U(0, 1)", flags=["--mask-ratio", "0.5:1"]),
    "loss_all": variant("token loss on every position, not only the noised ones", flags=["--loss-positions", "all"]),
    "lr2e-3": variant("peak learning rate 2e-3 instead of 1e-3", flags=["--lr", "2e-3"]),
    "mask_high_lr2e-3": variant("masking ratio from U(0.5, 1) and peak learning rate 2e-3", flags=BEST),
    "mask_high_lr2e-3_loss_all": variant("the masking ratio and learning rate above, token loss on every position",
                                         flags=[*BEST, "--loss-positions", "all"]),
    "mask_high_lr3e-3": variant("masking ratio from U(0.5, 1) and peak learning rate 3e-3",
                                flags=["--mask-ratio", "0.5:1", "--lr", "3e-3"]),
    "mask_high_lr2e-3_dropout0": on_best("no dropout", ["--dropout", "0"]),
    "mask_high_lr2e-3_mixed": on_best("distilled and raw pairs together", data="mixed"),
    "mask_high_lr2e-3_raw": on_best("raw targets", data="raw"),
    "mask_high_lr2e-3_raw_dropout0": on_best("raw targets, no dropout", ["--dropout", "0"], data="raw"),
    "mask_high_lr2e-3_raw_dropout0_ls0": on_best("raw targets, no dropout, no label smoothing",
                                                 ["--dropout", "0", "--label-smoothing", "0"], data="raw"),
    "mask_high_lr2e-3_raw_dropout0_budget_linear": on_best(
        "raw targets, no dropout, learning rate falling linearly to 0 at the end of the budget",
        ["--dropout", "0", "--lr-scheduler", "budget_linear"], data="raw"),
    "mask_high_lr2e-3_raw_mask_range": on_best("raw targets, mask-range decoder start", position="mask-range",
                                               data="raw"),
    "base_seed2": variant("base with --seed 2 (the seed-to-seed spread)", flags=["--seed", "2"]),
    "base_again": variant("base, trained again beside the two above (same load: the run-to-run spread)"),
}
PASSES = (1, 2, 3, 5, 10)
TARGET_PASSES = 5  # --iter-decode-max-iter 4


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", required=True, help="working folder (data, models, scores)")
    parser.add_argument("--corpora", nargs="+", default=CORPORA,
                        help="folders holding {train,valid,test}.{SRC,TGT}; trained on their union, scored apart")
    parser.add_argument("--src", default="de"), parser.add_argument("--tgt", default="en")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), help="variants to train (default: all)")
    parser.add_argument("--minutes", type=float, help="training budget of every variant and of the AR twin's extra time (default 10)")
    parser.add_argument("--ar-minutes", type=float, help="training budget of the teacher (default 20)")
    parser.add_argument("--tiny", action="store_true", help="toy run: sliced corpora, tiny models, few updates")
    parser.add_argument("--arch", help="gmlm_t5 preset (default gmlm_t5_mini; tiny: gmlm_t5_tiny); t5_ar takes the same shape")
    parser.add_argument("--vocab-size", type=int, help="joint sentencepiece pieces (default 3000; tiny: 300)")
    parser.add_argument("--max-update", type=int, help="updates per variant on top of the time budget (tiny: 20)")
    parser.add_argument("--ar-max-update", type=int, help="the teacher's updates on top of its time budget (default: "
                        "--max-update); the AR twin gets both together")
    parser.add_argument("--dropout", type=float, default=0.1,
                        help="dropout of the teacher and of every model whose variant sets none (0.1: the setting of the "
                             "table in ablations/; docs/training.md, 2026-12-02, measured 0 better at these budgets)")
    parser.add_argument("--keep-states", type=int, default=1,
                        help="saved states each model keeps (above 1: saved and validated every 100 updates and "
                             "per epoch, e.g. to average them afterwards; 1: saved where training stops, validated at "
                             "epoch ends); final.pt is the last")
    parser.add_argument("--parallel", type=int, default=2, help="training jobs at a time")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per job")
    parser.add_argument("--stop-after", type=int, choices=range(1, STAGES + 1), metavar="STAGE",
                        help="stop after this stage (1-6)")
    parser.add_argument("--results", help="where the report goes (default ablations/; tiny: WORK/ablations)")
    args = parser.parse_args(argv)
    defaults = ({"arch": "gmlm_t5_tiny", "vocab_size": 300, "max_update": 20, "minutes": 2.0, "ar_minutes": 2.0}
                if args.tiny else
                {"arch": "gmlm_t5_mini", "vocab_size": 3000, "max_update": 0, "minutes": 10.0, "ar_minutes": 20.0})
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.ar_max_update is None:
        args.ar_max_update = args.max_update
    if args.parallel < 1 or args.threads < 1 or args.keep_states < 1:
        raise SystemExit("--parallel, --threads and --keep-states must be >= 1")
    args.work = Path(args.work)
    args.results = Path(args.results or (args.work / "ablations" if args.tiny else ROOT / "ablations"))
    args.variants = args.variants or list(VARIANTS)
    return args


def base_flags(args, kind: str, minutes: float, max_update: int = None) -> list:
    return training.system_flags(kind, args.arch) + training.common_flags(
        minutes, args.max_update if max_update is None else max_update, args.tiny, cpu=True,
        save_every=save_every(args), keep=args.keep_states, dropout=args.dropout)


def save_every(args) -> int:
    """Updates between saved (and validated) states: none where one state is kept, as in the benchmark (fairseq
    saves where training stops and validates at epoch ends; validating every 100 updates cost the benchmark's
    models 13% of their minutes: docs/training.md, "47 minutes of fine-tuning instead of 33"); every 100 (tiny:
    10) where --keep-states > 1 keeps states to average."""
    if args.keep_states == 1:
        return 0
    return 10 if args.tiny else 100


def teacher_flags(args, minutes: float, max_update: int) -> list:
    """t5_ar's flags with the teacher's recipe (training.TEACHER_RECIPE), for the teacher and the twins it resumes."""
    return base_flags(args, "t5_ar", minutes, max_update) + training.TEACHER_RECIPE


def train_teacher(args, data_bin: str) -> Path:
    flags = teacher_flags(args, args.ar_minutes, args.ar_max_update)
    return training.train("teacher", data_bin, args.work / "models" / "teacher", flags, 1)


def twin_max_update(args) -> int:
    """The AR twin's update limit: the teacher's and a variant's together where both are limited, else 0 (none)."""
    return args.ar_max_update + args.max_update if args.ar_max_update and args.max_update else 0


def twins(names: list) -> dict:
    """{twin: its flags} of the variants NAMES (see TWIN_FLAGS), in the variants' order."""
    return {twin_name(VARIANTS[name]["flags"]): twin_flags(VARIANTS[name]["flags"]) for name in names}


def train_twin(args, data_bin: str, teacher_dir: Path, name: str = "ar_twin", flags=()) -> Path:
    """The teacher trained on with FLAGS: a copy of its last state resumed with a budget of --ar-minutes + --minutes
    (fairseq counts the training time saved in the checkpoint), and of --ar-max-update + --max-update updates where
    both limit the updates."""
    twin = training.with_flags(teacher_flags(args, args.ar_minutes + args.minutes, twin_max_update(args)), flags)
    return training.train(name, data_bin, args.work / "models" / name, twin, 1,
                          resume=teacher_dir / "checkpoint_last.pt", minutes_left=args.minutes)


def train_variant(args, name: str, data: dict, teacher: Path) -> Path:
    spec = VARIANTS[name]
    warm = ["--init-from-ar", str(teacher)] if spec["warm"] else []
    flags = training.with_flags(base_flags(args, "gmlm", args.minutes), [*spec["flags"], *warm])
    return training.train(name, data[spec["data"]], args.work / "models" / name, flags, 1)


def configs(names: list) -> list:
    rows = [systems.Config("teacher_beam4", "teacher (t5_ar), beam 4", "teacher", None, ["--beam", "4"])]
    for twin in twins(names):
        rows += [systems.Config(f"{twin}_beam4", f"AR twin {twin} (t5_ar), beam 4", twin, None, ["--beam", "4"]),
                 systems.Config(f"{twin}_greedy", f"AR twin {twin} (t5_ar), greedy", twin, None, ["--beam", "1"])]
    for name in names:
        rows += [systems.Config(f"{name}_p{p}", name, name, p, ["--iter-decode-max-iter", str(p - 1),
                                                                 *systems.GMLM_DECODING]) for p in PASSES]
    return rows


def evaluate_all(args, info: dict, checkpoints: dict) -> list:
    """Every variant's rows, cached in eval/scores.json (scored again when a configuration's flags change)."""
    return cached_json(args.work / "eval" / "scores.json", lambda: evaluate_variants(args, info, checkpoints),
                       inputs=systems.decoding_flags(configs(list(args.variants))))


def evaluate_variants(args, info: dict, checkpoints: dict) -> list:
    import torch

    torch.set_num_threads(args.parallel * args.threads)
    autoregressive = {"teacher", *twins(args.variants)}
    tasks = {name: ("translation" if name in autoregressive else "translation_gmlm") for name in checkpoints}
    subsets = [valid["subset"] for valid in info["valids"].values()]
    loaded = systems.load_all({name: str(path) for name, path in checkpoints.items()}, info["bin"], args.src,
                              args.tgt, subsets, "cpu", "fp32", tasks)
    return evaluate.evaluate(loaded, configs([name for name in args.variants]), info["valids"], args.work / "eval")


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s | %(name)s | %(message)s")
    with training.subprocess_threads(args.threads):
        run_stages(args)


def run_stages(args) -> None:
    progress = Progress(STAGES)
    args.work.mkdir(parents=True, exist_ok=True)

    progress.stage(1, f"prepare {', '.join(args.corpora)}")
    info = prepare_corpora(args.corpora, args.work / "data", args.src, args.tgt, args.vocab_size, args.tiny)
    progress.stage(2, f"train the teacher t5_ar ({args.ar_minutes} min)")
    teacher = train_teacher(args, info["bin"])
    data = {"raw": info["bin"]}
    wanted = {VARIANTS[name]["data"] for name in args.variants}
    if wanted & {"distill", "mixed"}:  # raw-only variants skip the 7 minutes of distillation
        progress.stage(3, "distill the training set with the teacher (beam 4)")
        data["distill"] = training.distill(args.work, info["bin"], teacher, args.src, args.tgt, True)
    else:
        progress.stage(3, "no variant trains on distilled targets: distillation skipped")
    if "mixed" in wanted:
        data["mixed"] = training.mixed_data(args.work, data["raw"], data["distill"])
    if args.stop_after == 3:
        return
    jobs = {twin: (lambda twin=twin, flags=flags: train_twin(args, info["bin"], teacher.parent, twin, flags))
            for twin, flags in twins(args.variants).items()}
    jobs.update({name: (lambda name=name: train_variant(args, name, data, teacher)) for name in args.variants})
    progress.stage(4, f"train {len(jobs)} models, {args.minutes} min each, {args.parallel} at a time")
    with ThreadPoolExecutor(args.parallel) as pool:
        futures = {name: pool.submit(job) for name, job in jobs.items()}
        checkpoints = {name: future.result() for name, future in futures.items()}
    checkpoints["teacher"] = teacher
    if args.stop_after == 4:
        return
    progress.stage(5, f"evaluate on {', '.join(info['valids'])} valid sets")
    rows = evaluate_all(args, info, checkpoints)
    if args.stop_after == 5:
        return
    progress.stage(6, f"report to {args.results}")
    write_report(args, info, rows, {name: training.updates_of(path) for name, path in checkpoints.items()})
    progress.stage(6, "done")


def write_report(args, info: dict, rows: list, updates: dict) -> None:
    from benchmarks.harness.ablation_report import write

    record = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "tiny": args.tiny,
              "arch": args.arch, "minutes": args.minutes, "ar_minutes": args.ar_minutes, "dropout": args.dropout,
              "max_update": args.max_update, "ar_max_update": args.ar_max_update,
              "twin_max_update": twin_max_update(args),
              "parallel": args.parallel, "threads": args.threads, "train_pairs": info["train_pairs"],
              "trained_threads": {name: training.recorded_threads(args.work / "models" / name) for name in updates},
              "corpora": [Path(corpus).name for corpus in info["corpora"]],
              "variants": {name: dict(VARIANTS[name], updates=updates[name], twin=twin_name(VARIANTS[name]["flags"]))
                           for name in args.variants},
              "twins": twins(args.variants),
              "updates": updates, "rows": rows, "gmlm_decoding": systems.GMLM_DECODING,
              "command": shown(["python", "-m", "benchmarks.harness.ablate", *sys.argv[1:]])}
    write(record, args.results)


if __name__ == "__main__":
    main()
