"""The benchmarked configurations, loading each model once, and translating a test subset in-process.

A configuration is one row of the results table: a trained model and the decoding flags it runs with.
``--iter-decode-max-iter k`` means k+1 decoder passes in fairseq (and here), so a row with P passes
runs ``--iter-decode-max-iter P-1``.
"""

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = str(ROOT / "fairseq_gmlm")

MODEL_TASKS = {"ar": "translation", "cmlm": "translation_lev", "gmlm_distill": "translation_gmlm",
               "gmlm_raw": "translation_gmlm"}
PASSES = (1, 2, 3, 4, 5, 6, 10)
TARGET_PASSES = 5  # --iter-decode-max-iter 4, the configuration the targets name
LENGTH_FLAGS = ["--max-len-a", "1.5", "--max-len-b", "10"]


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


def generation_args(data_bin: str, task: str, checkpoint: str, src: str, tgt: str, flags: list, cpu: bool):
    from fairseq import options

    parser = options.get_generation_parser(default_task=task)
    argv = [data_bin, "--user-dir", PLUGIN, "--task", task, "--path", checkpoint, "-s", src, "-t", tgt,
            "--required-batch-size-multiple", "1", *LENGTH_FLAGS, *flags]
    return options.parse_args_and_arch(parser, argv + (["--cpu"] if cpu else []))


def pick_device(cpu: bool, precision: str) -> str:
    import torch

    device = "cuda" if torch.cuda.is_available() and not cpu else "cpu"
    if precision == "fp16" and device == "cpu":
        raise SystemExit("--fp16 needs a CUDA device (none found, or --cpu given); use --bf16 or neither on the CPU")
    return device


class Loaded:
    """One model with its own task instance (the tasks differ in dictionary symbols), loaded once."""

    def __init__(self, model: str, checkpoint: str, data_bin: str, src: str, tgt: str, subsets: list,
                 device: str, precision: str):
        import torch
        from fairseq import checkpoint_utils, tasks, utils

        self.data_bin, self.checkpoint, self.src, self.tgt = data_bin, checkpoint, src, tgt
        self.cpu = device == "cpu"
        args = generation_args(data_bin, MODEL_TASKS[model], checkpoint, src, tgt, [], self.cpu)
        utils.import_user_module(args)
        self.task = tasks.setup_task(args)
        for subset in subsets:
            self.task.load_dataset(subset)
        self.models, _ = checkpoint_utils.load_model_ensemble([checkpoint], task=self.task)
        dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(precision, torch.float32)
        for network in self.models:
            network.eval().to(device=device, dtype=dtype)
        self.device = device
        self.parameters = sum(p.numel() for p in self.models[0].parameters())

    def generator(self, config: Config):
        args = generation_args(self.data_bin, MODEL_TASKS[config.model], self.checkpoint, self.src, self.tgt,
                               config.flags, self.cpu)
        return self.task.build_generator(self.models, args)


def load_all(checkpoints: dict, data_bin: str, src: str, tgt: str, subsets: list, device: str, precision: str) -> dict:
    missing = [path for path in checkpoints.values() if not Path(path).exists()]
    if missing:
        raise SystemExit(f"missing checkpoints {missing}: run the training stages first")
    return {model: Loaded(model, path, data_bin, src, tgt, subsets, device, precision)
            for model, path in checkpoints.items()}


def batches(dataset, ids: list, batch_size: int):
    """Batches of IDS sorted by source length (as fairseq batches), collated by the dataset."""
    ordered = sorted(ids, key=lambda i: int(dataset.src_sizes[i]))
    for start in range(0, len(ordered), batch_size):
        yield dataset.collater([dataset[i] for i in ordered[start:start + batch_size]])


def translate(loaded: Loaded, generator, config: Config, subset: str, ids: list, batch_size: int):
    """Detokenized translations of IDS in their order, and the decoder passes each used (None for AR)."""
    from fairseq import utils

    task, dictionary = loaded.task, loaded.task.target_dictionary
    ignore = {dictionary.bos(), dictionary.eos()}
    texts, passes = {}, {}
    for sample in batches(task.dataset(subset), ids, batch_size):
        if loaded.device == "cuda":
            sample = utils.move_to_cuda(sample)
        hypotheses = task.inference_step(generator, loaded.models, sample)
        for sentence_id, hypothesis in zip(sample["id"].tolist(), hypotheses):
            best = hypothesis[0]
            texts[sentence_id] = dictionary.string(best["tokens"].int().cpu(), "sentencepiece",
                                                   extra_symbols_to_ignore=ignore)
            passes[sentence_id] = used_passes(config, best)
    if sorted(texts) != sorted(ids):
        raise RuntimeError(f"{config.key} on {subset}: {len(texts)} translations for {len(ids)} sentences")
    return [texts[i] for i in ids], [passes[i] for i in ids]


def used_passes(config: Config, hypothesis: dict) -> Optional[int]:
    if config.passes is None:
        return None
    if config.model == "cmlm":
        return int(hypothesis["steps"]) + 1  # fairseq's generator reports the 0-based index of the last pass
    return int(hypothesis["steps"])


if __name__ == "__main__":
    sys.exit("a module of scripts/run_benchmark.py")
