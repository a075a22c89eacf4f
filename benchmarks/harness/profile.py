"""Stage 6, second part: where decoding time goes, at batch size 1 and at the large batch size.

For the AR, CMLM and GMLM configurations at the target number of passes (the reranked GMLM's calls include its
teacher's: one encoder and one decoder call per batch; at the large batch size also the GMLM at 2 and 3 passes,
where it meets AR greedy), the time inside the networks'
forward calls (encoder, decoder with its output projection, GMLM's length head and cross-attention key/value
projection) is measured apart from the
rest (beam search or refinement bookkeeping, batching, detokenization: Python and small tensor ops), with the
number of decoder calls and the decoder's output positions (batch rows x target positions of each call's logits:
one per row for a cached AR step, the whole target for a refinement pass). Timers wrap the instances' own methods
for one run and are removed after it.
"""

import logging
import time
from contextlib import contextmanager
from pathlib import Path

from benchmarks.harness.cache import cached_json
from benchmarks.harness.speed import synchronize
from benchmarks.harness.systems import TARGET_PASSES, decoding_flags, translate

logger = logging.getLogger("benchmark.profile")


def profiled_keys(batch_size: int = 1) -> list:
    if batch_size == 1:
        return ["ar_greedy", "ar_beam4"] + [f"{model}_p{TARGET_PASSES}" for model in ("cmlm", "gmlm", "gmlm_reranked")]
    return ["ar_greedy", "ar_beam4", f"cmlm_p{TARGET_PASSES}", "gmlm_p2", "gmlm_p3", f"gmlm_p{TARGET_PASSES}"]


def output_positions(result) -> int:
    """Rows x positions of a decoder call's logits (B x T x V, alone or first of a tuple)."""
    logits = result[0] if isinstance(result, tuple) else result
    return logits.shape[0] * logits.shape[1]


def network_calls(model) -> dict:
    """{"encoder"|"decoder"|"length": (object, method name)}: gmlm_t5's methods, or a fairseq model's modules."""
    if hasattr(model, "length_logits"):  # gmlm_t5: decode() includes the output projection
        return {"encoder": (model, "encode"), "length": (model, "length_logits"), "memory": (model, "project_memory"),
                "decoder": (model, "decode")}
    return {"encoder": (model.encoder, "forward"), "decoder": (model.decoder, "forward")}


@contextmanager
def timed_calls(models: list, device: str):
    """Yields {part: [seconds, calls, output positions]} accumulated over MODELS' network calls while the
    context is open (positions counted for the decoder only)."""
    totals = {}
    patched = []
    for model in models:
        for part, (owner, name) in network_calls(model).items():
            totals.setdefault(part, [0.0, 0, 0])
            original = getattr(owner, name)

            def timed(*args, _original=original, _total=totals[part], _part=part, **kwargs):
                synchronize(device)
                start = time.perf_counter()
                result = _original(*args, **kwargs)
                synchronize(device)
                _total[0] += time.perf_counter() - start
                _total[1] += 1
                if _part == "decoder":
                    _total[2] += output_positions(result)
                return result

            setattr(owner, name, timed)  # an instance attribute shadows the class's method
            patched.append((owner, name))
    try:
        yield totals
    finally:
        for owner, name in patched:
            delattr(owner, name)


def profile(loaded: dict, configs: list, tests: dict, sentences: int, batch_size: int = 1) -> list:
    """Rows for profiled_keys(BATCH_SIZE) over the first SENTENCES of each test set (all of them when 0)."""
    import torch

    wanted = [config for config in configs if config.key in profiled_keys(batch_size)]
    rows = []
    for corpus, test in tests.items():
        ids = list(range(min(sentences or test["sentences"], test["sentences"])))
        batches = -(-len(ids) // batch_size)
        for config in wanted:
            system = loaded[config.model]
            generator = system.generator(config.flags)
            translate(system, generator, config, test["subset"], ids[:2 * batch_size], batch_size)  # warm-up
            torch.manual_seed(1)
            with timed_calls(system.models, system.device) as totals:
                start = time.perf_counter()
                translate(system, generator, config, test["subset"], ids, batch_size)
                synchronize(system.device)
                total = time.perf_counter() - start
            network = sum(seconds for seconds, _, _ in totals.values())
            decoder_seconds, decoder_calls, positions = totals["decoder"]
            rows.append({"corpus": corpus, "config": config.key, "system": config.system, "sentences": len(ids),
                         "batch_size": batch_size, "total_ms": 1000 * total / len(ids),
                         "network_ms": 1000 * network / len(ids), "other_ms": 1000 * (total - network) / len(ids),
                         "decoder_calls": decoder_calls / len(ids), "decoder_calls_per_batch": decoder_calls / batches,
                         "encoder_calls": totals["encoder"][1] / len(ids),
                         "decoder_positions": positions / len(ids),
                         "ms_per_decoder_call": 1000 * decoder_seconds / max(decoder_calls, 1)})
            logger.info("%s batch %d %-22s %.1f ms/sentence: networks %.1f, other %.1f; %.1f decoder calls per batch "
                        "of %.2f ms, %.1f decoder positions per sentence", corpus, batch_size, config.key,
                        rows[-1]["total_ms"], rows[-1]["network_ms"], rows[-1]["other_ms"],
                        rows[-1]["decoder_calls_per_batch"], rows[-1]["ms_per_decoder_call"],
                        rows[-1]["decoder_positions"])
    return rows


def profile_stage(loaded: dict, configs: list, tests: dict, out_dir: Path, sentences: int, large_batch: int) -> list:
    """profile(...) rows at batch size 1 over SENTENCES (cached in OUT_DIR/profile.json), then at LARGE_BATCH over
    every test sentence (OUT_DIR/profile-batchN.json; none when LARGE_BATCH is 0). Both are profiled again when the
    configurations' flags change."""
    flags = decoding_flags(configs)
    rows = cached_json(out_dir / "profile.json", lambda: profile(loaded, configs, tests, sentences),
                       inputs={"flags": flags, "sentences": sentences})
    if large_batch:
        rows = rows + cached_json(out_dir / f"profile-batch{large_batch}.json",
                                  lambda: profile(loaded, configs, tests, 0, large_batch), inputs={"flags": flags})
    return rows
