"""Speed and quality of gmlm_t5 against an autoregressive transformer and stock CMLM, end to end.

    python -m benchmarks.harness.run --work work/bench               # the full run (about two hours, 2 CPU cores)
    python -m benchmarks.harness.run --work work/bench-tiny --tiny   # a few minutes on toy data and models

from the repository root (``python scripts/run_benchmark.py`` runs the same).

Stages (each skips when its outputs exist, so rerunning the command resumes):
  1 prepare   union training corpus of --corpora, joint sentencepiece, fairseq binaries (test sets apart)
  2 train AR  fairseq's transformer at gmlm_t5's shape, stock translation task (--tune-ar: variants first)
  3 distill   gmlm-distill (fairseq_gmlm/cli/distill.py): the training set re-translated by the AR model (beam 4)
  4 train NAT gmlm_t5 on distilled and on raw data, stock cmlm_transformer on distilled data
  5 evaluate  sacreBLEU and chrF of every configuration on every test set
  6 speed     latency (batch 1) and throughput (large batch) in this process, on CUDA when available;
            then where batch-1 time goes (network forward calls vs the rest)
  7 report    RESULTS.md, results.json, tradeoff.png under --results
"""

import argparse
import logging
import os
import sys
from datetime import datetime, timezone
from pathlib import Path

from benchmarks.harness import evaluate, profile, report, speed, systems, training, tuning
from benchmarks.harness.paths import CORPORA, ROOT, shown
from benchmarks.harness.progress import Progress
from fairseq_gmlm.cli.prepare_data import prepare_corpora, read_lines
from fairseq_gmlm.cli.split_decoding import score

logger = logging.getLogger("run_benchmark")
STAGES = 7


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", required=True, help="working folder (data, models, scores, timings)")
    parser.add_argument("--corpora", nargs="+", default=CORPORA,
                        help="folders holding {train,valid,test}.{SRC,TGT}; trained on their union, tested apart")
    parser.add_argument("--src", default="de"), parser.add_argument("--tgt", default="en")
    parser.add_argument("--budget-minutes", type=float, default=22.0, help="training time of each of the 4 models")
    parser.add_argument("--tune-ar", nargs="*", choices=list(tuning.AR_VARIANTS),
                        help="train these AR variants (none named: all), keep the best valid BLEU's flags for every model")
    parser.add_argument("--tiny", action="store_true", help="toy run: sliced corpora, tiny models, few updates")
    parser.add_argument("--arch", help="gmlm_t5 preset whose shape every model takes (default gmlm_t5_mini; tiny: gmlm_t5_tiny)")
    parser.add_argument("--vocab-size", type=int, help="joint sentencepiece pieces (default 3000; tiny: 300)")
    parser.add_argument("--max-update", type=int, help="updates per model on top of the time budget (tiny: 30)")
    parser.add_argument("--average-last", type=int,
                        help="saved states averaged into final.pt: the last one and those saved before it (default 1, i.e. the "
                             "last state alone; tiny: 2)")
    parser.add_argument("--save-every", type=int, help="updates between saved states (default 100; tiny: 10)")
    parser.add_argument("--results", help="where the report goes (default benchmarks/; tiny: WORK/benchmarks)")
    parser.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", os.cpu_count() or 1)),
                        help="torch threads for training and timing (default $OMP_NUM_THREADS or all cores)")
    parser.add_argument("--latency-sentences", type=int, help="test sentences timed at batch size 1 (default 200; tiny: 8)")
    parser.add_argument("--large-batch", type=int, help="batch size of the throughput runs (default 128; tiny: 16)")
    parser.add_argument("--repeats", type=int, help="timed runs per configuration, median kept (default 3; tiny: 2)")
    parser.add_argument("--cpu", action="store_true", help="use the CPU even where CUDA is available")
    precision = parser.add_mutually_exclusive_group()
    precision.add_argument("--fp16", action="store_true", help="float16 inference in the speed stage (CUDA)")
    precision.add_argument("--bf16", action="store_true", help="bfloat16 inference in the speed stage")
    return fill_defaults(parser.parse_args(argv))


def fill_defaults(args):
    tiny = {"arch": "gmlm_t5_tiny", "vocab_size": 300, "max_update": 30, "average_last": 2, "save_every": 10,
            "latency_sentences": 8, "large_batch": 16, "repeats": 2}
    full = {"arch": "gmlm_t5_mini", "vocab_size": 3000, "max_update": 0, "average_last": 1, "save_every": 100,
            "latency_sentences": 200, "large_batch": 128, "repeats": 3}
    for name, value in (tiny if args.tiny else full).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.threads < 1:
        raise SystemExit(f"--threads must be >= 1, got {args.threads}")
    args.work = Path(args.work)
    args.results = Path(args.results or (args.work / "benchmarks" if args.tiny else ROOT / "benchmarks"))
    args.precision = "fp16" if args.fp16 else "bf16" if args.bf16 else "fp32"
    return args


def train_model(args, name: str, kind: str, data_bin: str, extra_flags=()) -> Path:
    import torch

    flags = training.system_flags(kind, args.arch) + training.common_flags(
        args.budget_minutes, args.max_update, args.tiny, cpu=args.cpu or not torch.cuda.is_available(),
        save_every=args.save_every, keep=args.average_last)
    return training.train(name, data_bin, args.work / "models" / name, flags + list(extra_flags), args.average_last)


def train_ar(args, info: dict) -> tuple:
    """The AR checkpoint and the tuning record ({} without --tune-ar)."""
    if args.tune_ar is None:
        return train_model(args, "ar", "ar", info["bin"]), {}
    valid = valid_set(args)

    def valid_score(checkpoint):
        device = systems.pick_device(args.cpu, "fp32")
        loaded = systems.load_all({"ar": str(checkpoint)}, info["bin"], args.src, args.tgt, ["valid"], device, "fp32")
        config = next(config for config in systems.benchmark_configs() if config.key == "ar_beam4")
        hypotheses, _ = systems.translate(loaded["ar"], loaded["ar"].generator(config.flags), config, "valid",
                                          list(range(valid["sentences"])), evaluate.EVAL_BATCH)
        return score(hypotheses, valid["reference"])

    record = tuning.tune(args.tune_ar or list(tuning.AR_VARIANTS),
                         lambda name, flags: train_model(args, name, "ar", info["bin"], flags), valid_score,
                         args.work / "models" / "ar-tuning.json")
    return Path(record["variants"][record["chosen"]]["checkpoint"]), record


def valid_set(args) -> dict:
    reference = args.work / "data" / "raw" / f"valid.{args.tgt}"
    return {"subset": "valid", "reference": str(reference), "sentences": len(read_lines(reference))}


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s | %(name)s | %(message)s")
    os.environ["OMP_NUM_THREADS"] = str(args.threads)  # the training subprocesses too
    progress = Progress(STAGES)
    args.work.mkdir(parents=True, exist_ok=True)

    progress.stage(1, f"prepare {', '.join(args.corpora)}")
    info = prepare_corpora(args.corpora, args.work / "data", args.src, args.tgt, args.vocab_size, args.tiny)
    data_bin = info["bin"]
    progress.stage(2, f"train the AR baseline (budget {args.budget_minutes} min per model)")
    ar_checkpoint, tuned = train_ar(args, info)
    checkpoints = {"ar": ar_checkpoint}
    shared = tuned["variants"][tuned["chosen"]]["flags"] if tuned else []
    progress.stage(3, "distill the training set with the AR model (beam 4)")
    distilled_bin = training.distill(args.work, data_bin, checkpoints["ar"], args.src, args.tgt, args.cpu)
    progress.stage(4, "train gmlm_t5 (distilled, raw) and stock cmlm_transformer (distilled)")
    checkpoints["gmlm_distill"] = train_model(args, "gmlm_distill", "gmlm", distilled_bin, shared)
    checkpoints["gmlm_raw"] = train_model(args, "gmlm_raw", "gmlm", data_bin, shared)
    checkpoints["cmlm"] = train_model(args, "cmlm", "cmlm", distilled_bin, shared)
    measure_and_report(args, info, checkpoints, tuned, progress)


def measure_and_report(args, info: dict, checkpoints: dict, tuned: dict, progress: Progress) -> None:
    import torch

    torch.set_num_threads(args.threads)
    device = systems.pick_device(args.cpu, args.precision)
    configs = systems.benchmark_configs()
    tests = info["tests"]
    valid = valid_set(args)
    subsets = [test["subset"] for test in tests.values()] + ["valid"]
    loaded = lazy_loader(checkpoints, info, subsets, args, device)

    progress.stage(5, f"evaluate {len(configs)} configurations on {len(tests)} test sets")
    eval_device = loaded("fp32-eval")
    scores = evaluate.evaluate_stage(eval_device, configs, tests, valid, args.work / "eval")
    progress.stage(6, f"speed on {device} ({args.precision}, {args.threads} threads)")
    machine = report.machine_info(device, args.precision, args.threads)
    speed_dir = args.work / f"speed-{device}-{args.precision}"
    timing = speed.speed_stage(loaded("speed"), configs, tests, speed_dir, machine,
                               latency_sentences=args.latency_sentences, large_batch=args.large_batch,
                               repeats=args.repeats)
    timing["profile"] = profile.profile_stage(loaded("speed"), configs, tests, speed_dir, args.latency_sentences)
    progress.stage(7, f"report to {args.results}")
    report.write_report(dict(result_record(args, info, scores, timing, checkpoints), ar_tuning=tuned), args.results)
    progress.stage(7, "done")


def lazy_loader(checkpoints: dict, info: dict, subsets: list, args, device: str):
    """Load the models on first use only (both measuring stages may be cached); fp32 for scoring."""
    cache = {}

    def get(purpose: str):
        precision = "fp32" if purpose == "fp32-eval" else args.precision
        key = (device, precision)
        if key not in cache:
            cache[key] = systems.load_all(
                {name: str(path) for name, path in checkpoints.items()}, info["bin"], args.src, args.tgt,
                subsets, device, precision)
        return cache[key]

    return get


def result_record(args, info: dict, scores: dict, timing: dict, checkpoints: dict) -> dict:
    commands = [shown(["python", "-m", "benchmarks.harness.run", *sys.argv[1:]])]
    for path in checkpoints.values():
        command_file = Path(path).parent / "command.txt"
        if command_file.exists():
            commands.append(command_file.read_text().strip())
    distill_file = args.work / "distill.command.txt"
    if distill_file.exists():
        commands.append(distill_file.read_text().strip())
    budget = f"{args.budget_minutes} min" + (f", at most {args.max_update} updates" if args.max_update else "")
    models = {name: {"checkpoint": str(path), "budget": budget, "parameters": parameter_count(path)}
              for name, path in checkpoints.items()}
    return {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "tiny": args.tiny, "arch": args.arch,
            "machine": timing["machine"], "corpora": info["corpora"], "train_pairs": info["train_pairs"],
            "tables": report.merge(scores["test"], timing["rows"]), "valid_ar": scores["valid_ar"],
            "profile": timing["profile"],
            "models": models, "commands": commands}


def parameter_count(checkpoint: Path) -> int:
    from fairseq import checkpoint_utils

    state = checkpoint_utils.load_checkpoint_to_cpu(str(checkpoint))
    return sum(tensor.numel() for tensor in state["model"].values())


if __name__ == "__main__":
    main()
