"""The benchmarked configurations, loading each model once, and translating a test subset in-process.

A configuration is one row of the results table: a trained model and the decoding flags it runs with.
``--iter-decode-max-iter k`` means k+1 decoder passes in fairseq (and here), so a row with P passes
runs ``--iter-decode-max-iter P-1``.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

from fairseq_gmlm.cli import split_decoding
from fairseq_gmlm.cli.split_decoding import Loaded

MODEL_TASKS = {"ar": "translation", "cmlm": "translation_lev", "gmlm_distill": "translation_gmlm",
               "gmlm_raw": "translation_gmlm"}
PASSES = (1, 2, 3, 4, 5, 6, 10)
TARGET_PASSES = 5  # --iter-decode-max-iter 4, the configuration the targets name


@dataclass
class Config:
    key: str  # short id, used in file names
    system: str  # what the table's first column shows
    model: str  # a key of MODEL_TASKS
    passes: Optional[int]  # maximum decoder passes (None: autoregressive)
    flags: List[str] = field(default_factory=list)


def benchmark_configs(passes=PASSES) -> List[Config]:
    configs = [Config("ar_greedy", "AR transformer, greedy", "ar", None, ["--beam", "1"]),
               Config("ar_beam4", "AR transformer, beam 4", "ar", None, ["--beam", "4"])]
    for kind, label in (("cmlm", "CMLM (stock), distilled"), ("gmlm_distill", "GMLM, distilled")):
        configs += [Config(f"{kind}_p{p}", label, kind, p, ["--iter-decode-max-iter", str(p - 1)]) for p in passes]
    configs.append(Config(f"gmlm_distill_p{TARGET_PASSES}_len3", "GMLM, distilled, 3 lengths", "gmlm_distill",
                          TARGET_PASSES, ["--iter-decode-max-iter", str(TARGET_PASSES - 1), "--iter-decode-with-beam", "3"]))
    configs.append(Config(f"gmlm_raw_p{TARGET_PASSES}", "GMLM, raw data (ablation)", "gmlm_raw", TARGET_PASSES,
                          ["--iter-decode-max-iter", str(TARGET_PASSES - 1)]))
    return configs


def pick_device(cpu: bool, precision: str) -> str:
    import torch

    device = "cuda" if torch.cuda.is_available() and not cpu else "cpu"
    if precision == "fp16" and device == "cpu":
        raise SystemExit("--fp16 needs a CUDA device (none found, or --cpu given); use --bf16 or neither on the CPU")
    return device


def load_all(checkpoints: dict, data_bin: str, src: str, tgt: str, subsets: list, device: str, precision: str) -> dict:
    missing = [path for path in checkpoints.values() if not Path(path).exists()]
    if missing:
        raise SystemExit(f"missing checkpoints {missing}: run the training stages first")
    return {model: Loaded(MODEL_TASKS[model], path, data_bin, src, tgt, subsets, device, precision)
            for model, path in checkpoints.items()}


def translate(loaded: Loaded, generator, config: Config, subset: str, ids: list, batch_size: int):
    """Detokenized translations of IDS in their order, and the decoder passes each used (None for AR)."""
    texts, steps = split_decoding.translate(loaded, generator, subset, ids, batch_size)
    return texts, [used_passes(config, step) for step in steps]


def used_passes(config: Config, steps) -> Optional[int]:
    if config.passes is None:
        return None
    if config.model == "cmlm":
        return int(steps) + 1  # fairseq's generator reports the 0-based index of the last pass
    return int(steps)
