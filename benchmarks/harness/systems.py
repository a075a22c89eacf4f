"""The benchmarked configurations, loading each model once, and translating a test subset in-process.

A configuration is one row of the results table: a trained model and the decoding flags it runs with.
``--iter-decode-max-iter k`` means k+1 decoder passes in fairseq (and here), so a row with P passes
runs ``--iter-decode-max-iter P-1``.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

from fairseq.utils import split_paths

from fairseq_gmlm.cli import split_decoding
from fairseq_gmlm.cli.split_decoding import Loaded

MODEL_TASKS = {"ar": "translation", "teacher": "translation", "cmlm": "translation_lev", "gmlm": "translation_gmlm",
               "gmlm_scratch": "translation_gmlm", "gmlm_reranked": "translation_gmlm"}
PASSES = (1, 2, 3, 4, 5, 6, 10)
TARGET_PASSES = 5  # --iter-decode-max-iter 4, the configuration the targets name
# The GMLM recipe's decoding: the rounded mean of the length model's distribution. On three GMLMs of the recipe at
# 13 + 47 minutes (2026-12-07) the mode ran short (length ratio 0.91-0.94) and the mean did not (0.97-1.01): +0.62 to
# +2.02 BLEU on LibreOffice-help test, +1.24 to +1.96 on its valid set, -0.09 to -0.53 on Ding, chrF up on all twelve
# (docs/decoding.md, "The mean length on the recipe's models"). The mode was the choice until then, from a model of
# 2026-12-02 on which the mean ran long (1.09). The task's default since, named here all the same, so that the
# benchmark's rows (and their cached flags) do not move with a default.
GMLM_DECODING = ["--length-choice", "mean"]
# The teacher (whose minutes the warm-started GMLM's budget already counts) chooses among the GMLM's candidates:
# the mean length and one shorter and one longer (noisy parallel decoding). More lengths from the length model's
# mode lost BLEU and chrF on both valid sets (docs/decoding.md, "Reranking with the teacher").
RERANKER = ["--iter-decode-with-external-reranker"]
RERANKING = RERANKER + ["--length-offsets", "3"]
# PaDIR's length beam: five lengths around the mean predicted length. On the 8 + 108-minute GMLM, with stutters
# dropped (--stutter-remask on), it took LibreOffice-help valid from 15.05 to 17.01 BLEU (the mode as centre: 16.45), at
# 1.7 times the batch-1 latency; around the mode it lost BLEU on three of four sets on a GMLM at 8 + 30 minutes
# (docs/training.md, "The length beam" and "118 minutes"). Since 2026-12-06 it keeps the default stutter rule
# (--stutter-remask first): on this benchmark's GMLM 25.99 against 24.39 BLEU on LibreOffice-help test, 3.83
# against 3.88 on Ding's, chrF ahead on both (docs/decoding.md, "Repeated words"). Its own row: the other GMLM rows
# keep GMLM_DECODING.
LENGTH_BEAM = ["--length-offsets", "5", "--length-choice", "mean"]


@dataclass
class Config:
    key: str  # short id, used in file names
    system: str  # what the table's first column shows
    model: str  # a key of MODEL_TASKS
    passes: Optional[int]  # maximum decoder passes (None: autoregressive)
    flags: List[str] = field(default_factory=list)
    timed: bool = True  # in the speed stage too (False: scored only)


def decoding_flags(configs: List[Config]) -> dict:
    """What rows of CONFIGS are decoded with, {configuration key: its flags}: the inputs a stored result of theirs
    is checked against on resuming (cache.cached_json)."""
    return {config.key: list(config.flags) for config in configs}


def benchmark_configs(passes=PASSES) -> List[Config]:
    def refinement(model: str, label: str, p: int, flags=(), stem: Optional[str] = None) -> Config:
        # the key is STEM (default: the model) and the passes, so one model can give rows with other flags
        return Config(f"{stem or model}_p{p}", label, model, p, ["--iter-decode-max-iter", str(p - 1), *flags])

    configs = [Config("ar_greedy", "AR t5_ar, greedy", "ar", None, ["--beam", "1"]),
               Config("ar_beam4", "AR t5_ar, beam 4", "ar", None, ["--beam", "4"]),
               Config("teacher_beam4", "teacher t5_ar (the GMLM's start), beam 4", "teacher", None, ["--beam", "4"],
                      timed=False)]
    configs += [refinement("cmlm", "CMLM (stock), distilled", p) for p in passes]
    configs += [refinement("gmlm", "GMLM, warm start", p, GMLM_DECODING) for p in passes]
    configs.append(refinement("gmlm_scratch", "GMLM from scratch", TARGET_PASSES, GMLM_DECODING))
    configs.append(refinement("gmlm", "GMLM, warm start, 5 lengths around the mean", TARGET_PASSES,
                              LENGTH_BEAM, stem="gmlm_beam5"))
    configs.append(refinement("gmlm_reranked", "GMLM, warm start, teacher reranks 3 lengths",
                              TARGET_PASSES, GMLM_DECODING + RERANKING))
    return configs


def decoded_models(checkpoints: dict) -> dict:
    """CHECKPOINTS (model: path) and "gmlm_reranked": the GMLM and its teacher, loaded together."""
    return dict(checkpoints, gmlm_reranked=f"{checkpoints['gmlm']}:{checkpoints['teacher']}")


def pick_device(cpu: bool, precision: str) -> str:
    import torch

    device = "cuda" if torch.cuda.is_available() and not cpu else "cpu"
    if precision == "fp16" and device == "cpu":
        raise SystemExit("--fp16 needs a CUDA device (none found, or --cpu given); use --bf16 or neither on the CPU")
    return device


def load_all(checkpoints: dict, data_bin: str, src: str, tgt: str, subsets: list, device: str, precision: str,
             tasks: Optional[dict] = None) -> dict:
    """{model: Loaded} for CHECKPOINTS ({model: path, or paths joined by ':'}), each under its task in TASKS
    (default: the benchmark's MODEL_TASKS)."""
    tasks = MODEL_TASKS if tasks is None else tasks
    missing = [path for paths in checkpoints.values() for path in split_paths(paths) if not Path(path).exists()]
    if missing:
        raise SystemExit(f"missing checkpoints {missing}: run the training stages first")
    return {model: Loaded(tasks[model], path, data_bin, src, tgt, subsets, device, precision)
            for model, path in checkpoints.items()}


def translate(loaded: Loaded, generator, config: Config, subset: str, ids: list, batch_size: int):
    """Detokenized translations of IDS in their order, and the decoder passes each used (None for AR)."""
    texts, steps = split_decoding.translate(loaded, generator, subset, ids, batch_size)
    return texts, [used_passes(config, step) for step in steps]


def base_model(model: str) -> str:
    """The MODEL_TASKS key of MODEL: a key itself, or KEY@PRECISION for a copy loaded at another precision
    (scripts/time_decoding.py)."""
    return model.split("@", 1)[0]


def used_passes(config: Config, steps) -> Optional[int]:
    if config.passes is None:
        return None
    if base_model(config.model) == "cmlm":
        return int(steps) + 1  # fairseq's generator reports the 0-based index of the last pass
    return int(steps)
