"""Stage 6: latency (batch size 1) and throughput (one large batch size) in this one process.

Models are loaded once; every configuration is warmed up untimed, then timed REPEATS times with the
configurations interleaved (the order rotates each round, so drift and cache effects hit all alike), and
the median is kept. On CUDA the timers synchronise the device. Each run's sentence count is checked.
"""

import logging
import statistics
import time
from pathlib import Path

from benchmarks.harness.cache import cached_json
from benchmarks.harness.systems import translate

logger = logging.getLogger("benchmark.speed")


def synchronize(device: str) -> None:
    """Wait for queued device work, so a timer read afterwards covers it (a no-op on the CPU)."""
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


def timed_run(system, generator, config, subset: str, ids: list, batch_size: int) -> float:
    synchronize(system.device)
    start = time.perf_counter()
    hypotheses, _ = translate(system, generator, config, subset, ids, batch_size)
    synchronize(system.device)
    seconds = time.perf_counter() - start
    if len(hypotheses) != len(ids):  # translate() checks the ids too; this guards the timing itself
        raise RuntimeError(f"{config.key}: {len(hypotheses)} sentences produced, {len(ids)} expected")
    return seconds


def measure(loaded: dict, configs: list, tests: dict, latency_sentences: int, large_batch: int, repeats: int) -> list:
    """Rows {corpus, config, latency_ms, throughput, ...} with the median over REPEATS interleaved rounds;
    LARGE_BATCH 0: latency only."""
    generators = {config.key: loaded[config.model].generator(config.flags) for config in configs}
    rows = []
    for corpus, test in tests.items():
        all_ids = list(range(test["sentences"]))
        plans = [(config, "latency", all_ids[:latency_sentences], 1) for config in configs]
        plans += [(config, "throughput", all_ids, large_batch) for config in configs if large_batch]
        for config, kind, ids, batch_size in plans:  # warm-up, untimed
            translate(loaded[config.model], generators[config.key], config, test["subset"], ids[:batch_size * 2], batch_size)
        runs = interleaved_runs(loaded, generators, plans, test["subset"], repeats, corpus)
        rows += [summary(corpus, config, runs, len(plans[0][2]), len(all_ids), large_batch, repeats) for config in configs]
    return rows


def interleaved_runs(loaded: dict, generators: dict, plans: list, subset: str, repeats: int, corpus: str) -> dict:
    """{(config key, kind): [seconds per sentence, one per round]}; each round starts one plan later."""
    import torch

    runs = {(config.key, kind): [] for config, kind, _, _ in plans}
    for round_index in range(repeats):
        shift = round_index % len(plans)
        for config, kind, ids, batch_size in plans[shift:] + plans[:shift]:
            torch.manual_seed(1)
            seconds = timed_run(loaded[config.model], generators[config.key], config, subset, ids, batch_size)
            runs[(config.key, kind)].append(seconds / len(ids))
        logger.info("%s: timing round %d/%d done", corpus, round_index + 1, repeats)
    return runs


def summary(corpus: str, config, runs: dict, latency_sentences: int, sentences: int, large_batch: int,
            repeats: int) -> dict:
    latency_runs = runs[(config.key, "latency")]
    row = {"corpus": corpus, "config": config.key, "latency_ms": 1000 * statistics.median(latency_runs),
           "latency_sentences": latency_sentences, "repeats": repeats,
           "latency_runs_ms": [1000 * seconds for seconds in latency_runs]}
    if large_batch:
        throughput_runs = runs[(config.key, "throughput")]
        row.update(throughput=1 / statistics.median(throughput_runs), throughput_sentences=sentences,
                   large_batch=large_batch, throughput_runs=[1 / seconds for seconds in throughput_runs])
    return row


def speed_stage(loaded: dict, configs: list, tests: dict, out_dir: Path, machine: dict, **options) -> dict:
    """{"machine": MACHINE, "rows": measure(...)}, cached in OUT_DIR/speed.json."""
    return cached_json(out_dir / "speed.json",
                       lambda: {"machine": machine, "rows": measure(loaded, configs, tests, **options)})
