"""Stage 6: latency (batch size 1) and throughput (one large batch size) in this one process.

Models are loaded once; every configuration is warmed up untimed, then timed REPEATS times with the
configurations interleaved, and the median is kept. Interleaving is by slices: a round cuts the sentences into
PIECES consecutive runs of whole batches (in the source-length order batching uses) and times every configuration
on one slice before the next, the order rotating by one configuration a slice. A round of all configurations takes
minutes and a shared machine's speed drifts over minutes (rounds of whole runs, 2026-12-04: AR beam 4 at 77, 117
and 108 ms a sentence); slices of a few seconds let the drift hit every configuration alike. On CUDA the timers
synchronise the device. Each run's sentence count is checked.
"""

import logging
import statistics
import time
from pathlib import Path

from benchmarks.harness.cache import cached_json
from benchmarks.harness.systems import decoding_flags, translate
from fairseq_gmlm.cli.split_decoding import id_batches

logger = logging.getLogger("benchmark.speed")
PIECES = 10  # slices per round (fewer where a run has fewer batches)


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
        latency_ids = list(range(min(latency_sentences, test["sentences"])))
        all_ids = list(range(test["sentences"]))
        plans = [(config, "latency", latency_ids, 1) for config in configs]
        plans += [(config, "throughput", all_ids, large_batch) for config in configs if large_batch]
        for config, kind, ids, batch_size in plans:  # warm-up, untimed
            translate(loaded[config.model], generators[config.key], config, test["subset"], ids[:batch_size * 2], batch_size)
        runs = interleaved_runs(loaded, generators, plans, test["subset"], repeats, corpus)
        rows += [summary(corpus, config, runs, len(latency_ids), len(all_ids), large_batch, repeats) for config in configs]
    return rows


def pieces(batches: list, count: int) -> list:
    """BATCHES (lists of ids, in batching order) as at most COUNT slices of consecutive whole batches, as even as whole
    batches allow: translated slice by slice, the ids form the same batches as translated whole."""
    count = min(count, len(batches))
    edges = [round(index * len(batches) / count) for index in range(count + 1)]
    return [[i for batch in batches[low:high] for i in batch] for low, high in zip(edges, edges[1:])]


def schedule(plans: list, sliced: list, repeats: int):
    """(round, plan, slice of the plan's ids) in the order they are timed, SLICED holding each plan's slices: per
    round, per slice index, every plan that has that slice, starting one plan later at each slice (and each round), so
    no plan always runs first."""
    order = 0
    for round_index in range(repeats):
        for piece in range(max(len(parts) for parts in sliced)):
            shift = order % len(plans)
            order += 1
            for index in list(range(shift, len(plans))) + list(range(shift)):
                if piece < len(sliced[index]):
                    yield round_index, plans[index], sliced[index][piece]


def interleaved_runs(loaded: dict, generators: dict, plans: list, subset: str, repeats: int, corpus: str) -> dict:
    """{(config key, kind): [seconds per sentence, one per round]}, each round's time of a plan the sum of its
    PIECES slices' (see ``schedule``), cut from the batches SUBSET's source lengths order."""
    import torch

    dataset = loaded[plans[0][0].model].task.dataset(subset)
    sliced = [pieces(id_batches(dataset, ids, batch_size), PIECES) for _, _, ids, batch_size in plans]
    runs = {(config.key, kind): [0.0] * repeats for config, kind, _, _ in plans}
    current = 0
    for round_index, (config, kind, _, batch_size), ids in schedule(plans, sliced, repeats):
        if round_index != current:
            logger.info("%s: timing round %d/%d done", corpus, current + 1, repeats)
            current = round_index
        torch.manual_seed(1)
        runs[(config.key, kind)][round_index] += timed_run(
            loaded[config.model], generators[config.key], config, subset, ids, batch_size)
    logger.info("%s: timing round %d/%d done", corpus, repeats, repeats)
    sentences = {(config.key, kind): len(ids) for config, kind, ids, _ in plans}
    return {key: [seconds / sentences[key] for seconds in rounds] for key, rounds in runs.items()}


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
    """{"machine": MACHINE, "rows": measure(...)}, cached in OUT_DIR/speed.json (timed again when the configurations'
    flags or OPTIONS change)."""
    return cached_json(out_dir / "speed.json",
                       lambda: {"machine": machine, "rows": measure(loaded, configs, tests, **options)},
                       inputs={"flags": decoding_flags(configs), **options})
