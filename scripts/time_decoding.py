#!/usr/bin/env python
"""Time sets of decoding flags against each other on a benchmark's models and test sets, in one process.

    python scripts/time_decoding.py --work work/bench --config gmlm_p5 \
        --compare "0=--length-group-size 0" "32=--length-group-size 32"

Each set is one of the benchmark's configurations (``--config``, a key of its results table) with the set's flags
added. The sets are timed as the benchmark's speed stage times its rows (benchmarks/harness/speed.py): batch size 1
over the first --latency-sentences test sentences and batches of --large-batch over all of them, a warm-up, then
--repeats rounds with the sets interleaved, the median kept. Before timing, every set translates each test set once
at --large-batch and is compared with the first set: the table says how many translations are identical.

A set with ``--bf16`` decodes with a bfloat16 copy of the model (loaded beside the float32 one, timed interleaved with
it); the generator never sees the flag, which it would ignore. ``--fp16`` and ``--amp`` are refused.
"""

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.harness import report  # noqa: E402  (light: no torch, no fairseq)


def set_precision(flags: list) -> tuple:
    """(precision, the other flags) of one set's FLAGS: "bf16" where they hold --bf16, else "fp32". The models are
    loaded once per precision, so the flag picks the copy the set decodes with instead of reaching the generator;
    the other precision flags stay refused (split_decoding.refuse_precision_flags)."""
    from fairseq_gmlm.cli.split_decoding import refuse_precision_flags

    rest = [flag for flag in flags if flag != "--bf16"]
    refuse_precision_flags(rest)
    return ("bf16" if "--bf16" in flags else "fp32"), rest


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", required=True, help="the working folder of a finished scripts/run_benchmark.py run")
    parser.add_argument("--config", required=True, help="the benchmark configuration the sets start from, e.g. gmlm_p5")
    parser.add_argument("--compare", nargs="+", required=True, metavar="NAME=FLAGS",
                        help="named flag sets, the first the reference, e.g. '0=--length-group-size 0'")
    parser.add_argument("--latency-sentences", type=int, default=200)
    parser.add_argument("--large-batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=report.default_threads(),
                        help="torch threads (default $OMP_NUM_THREADS or all cores, as the benchmark's speed stage)")
    args = parser.parse_args(argv)
    args.sets = []
    for item in args.compare:
        if "=" not in item:
            parser.error(f"--compare {item!r}: write NAME=FLAGS, e.g. '32=--length-group-size 32'")
        name, flags = item.split("=", 1)
        try:
            args.sets.append((name, flags, *set_precision(flags.split())))
        except ValueError as error:
            parser.error(f"--compare {item!r}: {error}")
    if args.latency_sentences < 1 or args.large_batch < 1 or args.repeats < 1:
        parser.error("--latency-sentences, --large-batch and --repeats must be >= 1")
    return args


def main(argv=None):
    args = parse_args(argv)
    import torch

    from benchmarks.harness import speed, systems

    torch.set_num_threads(args.threads)
    work = Path(args.work)
    info = json.loads((work / "data" / "corpora.json").read_text())
    base = {config.key: config for config in systems.benchmark_configs()}.get(args.config)
    if base is None:
        raise SystemExit(f"--config {args.config}: not a benchmark configuration "
                         f"(choose from {', '.join(config.key for config in systems.benchmark_configs())})")
    checkpoints = systems.decoded_models({name: str(work / "models" / name / "final.pt")
                                          for name in ("ar", "teacher", "cmlm", "gmlm", "gmlm_scratch")})
    tests = info["tests"]
    # one copy of the model per precision the sets name: the float32 one under the model's own key
    copy = {precision: base.model if precision == "fp32" else f"{base.model}@{precision}"
            for _, _, precision, _ in args.sets}
    loaded = {}
    for precision, key in copy.items():
        loaded.update(systems.load_all({key: checkpoints[base.model]}, str(work / "data" / "bin"), info["src"],
                                       info["tgt"], [test["subset"] for test in tests.values()], "cpu", precision,
                                       tasks={key: systems.MODEL_TASKS[base.model]}))
    sets = [(name, flags) for name, flags, _, _ in args.sets]
    configs = [replace(base, key=f"{base.key}_{name}", system=name, model=copy[precision], flags=base.flags + rest)
               for name, _, precision, rest in args.sets]

    same = {}
    for corpus, test in tests.items():
        ids = list(range(test["sentences"]))
        outputs = [systems.translate(loaded[config.model], loaded[config.model].generator(config.flags), config,
                                     test["subset"], ids, args.large_batch)[0] for config in configs]
        for config, texts in zip(configs, outputs):
            same[corpus, config.key] = sum(a == b for a, b in zip(texts, outputs[0]))
    rows = speed.measure(loaded, configs, tests, args.latency_sentences, args.large_batch, args.repeats)

    print(f"{base.key} ({' '.join(base.flags)}); medians of {args.repeats} interleaved rounds, "
          f"{args.threads} threads\n")
    print(f"| test set | set | flags | ms/sentence (bs 1) | sentences/s (bs {args.large_batch}) | "
          f"identical to {sets[0][0]} |")
    print("|---|---|---|---|---|---|")
    by_key = {config.key: (name, flags) for config, (name, flags) in zip(configs, sets)}
    for row in rows:
        name, flags = by_key[row["config"]]
        sentences = tests[row["corpus"]]["sentences"]
        print(f"| {row['corpus']} | {name} | `{flags}` | {row['latency_ms']:.1f} | {row['throughput']:.1f} | "
              f"{same[row['corpus'], row['config']]}/{sentences} |")


if __name__ == "__main__":
    main()
