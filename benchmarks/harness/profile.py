"""Stage 6, second part: where decoding time goes at batch size 1.

For the AR, CMLM and GMLM configurations at the target number of passes (the reranked GMLM's calls include its
teacher's: one encoder and one decoder call per batch), the time inside the networks'
forward calls (encoder, decoder with its output projection, GMLM's length head and cross-attention key/value
projection) is measured apart from the
rest (beam search or refinement bookkeeping, batching, detokenization: Python and small tensor ops), with the
number of decoder calls. Timers wrap the instances' own methods for one run and are removed after it.
"""

import logging
import time
from contextlib import contextmanager
from pathlib import Path

from benchmarks.harness.cache import cached_json
from benchmarks.harness.speed import synchronize
from benchmarks.harness.systems import TARGET_PASSES, translate

logger = logging.getLogger("benchmark.profile")


def profiled_keys() -> list:
    return ["ar_greedy", "ar_beam4"] + [f"{model}_p{TARGET_PASSES}" for model in ("cmlm", "gmlm", "gmlm_reranked")]


def network_calls(model) -> dict:
    """{"encoder"|"decoder"|"length": (object, method name)}: gmlm_t5's methods, or a fairseq model's modules."""
    if hasattr(model, "length_logits"):  # gmlm_t5: decode() includes the output projection
        return {"encoder": (model, "encode"), "length": (model, "length_logits"), "memory": (model, "project_memory"),
                "decoder": (model, "decode")}
    return {"encoder": (model.encoder, "forward"), "decoder": (model.decoder, "forward")}


@contextmanager
def timed_calls(models: list, device: str):
    """Yields {part: [seconds, calls]} accumulated over MODELS' network calls while the context is open."""
    totals = {}
    patched = []
    for model in models:
        for part, (owner, name) in network_calls(model).items():
            totals.setdefault(part, [0.0, 0])
            original = getattr(owner, name)

            def timed(*args, _original=original, _total=totals[part], **kwargs):
                synchronize(device)
                start = time.perf_counter()
                result = _original(*args, **kwargs)
                synchronize(device)
                _total[0] += time.perf_counter() - start
                _total[1] += 1
                return result

            setattr(owner, name, timed)  # an instance attribute shadows the class's method
            patched.append((owner, name))
    try:
        yield totals
    finally:
        for owner, name in patched:
            delattr(owner, name)


def profile(loaded: dict, configs: list, tests: dict, sentences: int) -> list:
    import torch

    wanted = [config for config in configs if config.key in profiled_keys()]
    rows = []
    for corpus, test in tests.items():
        ids = list(range(min(sentences, test["sentences"])))
        for config in wanted:
            system = loaded[config.model]
            generator = system.generator(config.flags)
            translate(system, generator, config, test["subset"], ids[:2], 1)  # warm-up
            torch.manual_seed(1)
            with timed_calls(system.models, system.device) as totals:
                start = time.perf_counter()
                translate(system, generator, config, test["subset"], ids, 1)
                synchronize(system.device)
                total = time.perf_counter() - start
            network = sum(seconds for seconds, _ in totals.values())
            decoder_seconds, decoder_calls = totals["decoder"]
            rows.append({"corpus": corpus, "config": config.key, "system": config.system, "sentences": len(ids),
                         "total_ms": 1000 * total / len(ids), "network_ms": 1000 * network / len(ids),
                         "other_ms": 1000 * (total - network) / len(ids),
                         "decoder_calls": decoder_calls / len(ids), "encoder_calls": totals["encoder"][1] / len(ids),
                         "ms_per_decoder_call": 1000 * decoder_seconds / max(decoder_calls, 1)})
            logger.info("%s %-22s %.1f ms/sentence: networks %.1f, other %.1f; %.1f decoder calls of %.2f ms",
                        corpus, config.key, rows[-1]["total_ms"], rows[-1]["network_ms"], rows[-1]["other_ms"],
                        rows[-1]["decoder_calls"], rows[-1]["ms_per_decoder_call"])
    return rows


def profile_stage(loaded: dict, configs: list, tests: dict, out_dir: Path, sentences: int) -> list:
    """profile(...) rows, cached in OUT_DIR/profile.json."""
    return cached_json(out_dir / "profile.json", lambda: profile(loaded, configs, tests, sentences))
