"""Decoding a binarised split in-process with a checkpoint loaded once, and scoring the detokenized output.

Shared by ``gmlm-sweep`` (``sweep.py``) and the benchmark harness (``benchmarks/harness/``), which compares
many decoding flag sets per model: fairseq-generate would reload the model and the data for each.
"""

from pathlib import Path

from fairseq_gmlm.cli import PLUGIN

# Candidate lengths up to 1.5 x the source length + 10 (fairseq's --max-len-a/b), wherever the benchmark decodes.
LENGTH_FLAGS = ["--max-len-a", "1.5", "--max-len-b", "10"]


def generation_args(data_bin: str, task: str, checkpoint: str, src: str, tgt: str, flags: list, cpu: bool):
    """fairseq-generate's parsed arguments for these inputs, LENGTH_FLAGS and then FLAGS (later flags win)."""
    from fairseq import options

    parser = options.get_generation_parser(default_task=task)
    argv = [data_bin, "--user-dir", PLUGIN, "--task", task, "--path", checkpoint, "-s", src, "-t", tgt,
            "--required-batch-size-multiple", "1", *LENGTH_FLAGS, *flags]
    return options.parse_args_and_arch(parser, argv + (["--cpu"] if cpu else []))


PRECISION_FLAGS = ("--fp16", "--bf16", "--amp")


def refuse_precision_flags(flags: list) -> None:
    """Raise ValueError naming any of PRECISION_FLAGS in a generator's FLAGS: a Loaded model's precision is fixed
    when it is loaded (its ``precision``), and fairseq's generator would ignore the flag without a word."""
    named = [flag for flag in flags if flag in PRECISION_FLAGS]
    if named:
        raise ValueError(f"{' '.join(named)}: decoding flags cannot change the precision of a model already loaded; "
                         f"load it at that precision instead (scripts/time_decoding.py takes --bf16 in a set)")


class Loaded:
    """One model (or the models of a colon-separated CHECKPOINT) with its own task instance (tasks differ in
    dictionary symbols), loaded once."""

    def __init__(self, task: str, checkpoint: str, data_bin: str, src: str, tgt: str, subsets: list,
                 device: str, precision: str):
        import torch
        from fairseq import checkpoint_utils, tasks, utils

        self.task_name, self.data_bin, self.checkpoint, self.src, self.tgt = task, data_bin, checkpoint, src, tgt
        self.cpu = device == "cpu"
        args = generation_args(data_bin, task, checkpoint, src, tgt, [], self.cpu)
        utils.import_user_module(args)
        self.task = tasks.setup_task(args)
        for subset in subsets:
            self.task.load_dataset(subset)
        # colon-separated: an ensemble, or GMLM(s) and the AR reranker of --iter-decode-with-external-reranker
        self.models, _ = checkpoint_utils.load_model_ensemble(utils.split_paths(checkpoint), task=self.task)
        dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(precision, torch.float32)
        for network in self.models:
            network.eval().to(device=device, dtype=dtype)
        self.device = device
        self.parameters = sum(p.numel() for p in self.models[0].parameters())

    def generator(self, flags: list):
        """The task's generator for fairseq-generate's FLAGS (no precision flag: ``refuse_precision_flags``)."""
        refuse_precision_flags(flags)
        args = generation_args(self.data_bin, self.task_name, self.checkpoint, self.src, self.tgt, flags, self.cpu)
        return self.task.build_generator(self.models, args)


def id_batches(dataset, ids, batch_size: int) -> list:
    """IDS sorted by source length (as fairseq batches; stable), cut into lists of BATCH_SIZE ids."""
    ordered = sorted(ids, key=lambda i: int(dataset.src_sizes[i]))
    return [ordered[start:start + batch_size] for start in range(0, len(ordered), batch_size)]


def batches(dataset, ids: list, batch_size: int):
    """The ``id_batches`` of IDS, collated by the dataset."""
    for batch in id_batches(dataset, ids, batch_size):
        yield dataset.collater([dataset[i] for i in batch])


def translate(loaded: Loaded, generator, subset: str, ids: list, batch_size: int):
    """Detokenized translations of IDS in their order, and each best hypothesis's ``steps`` (None where the
    generator reports none, as autoregressive search does)."""
    from fairseq import utils

    task, dictionary = loaded.task, loaded.task.target_dictionary
    ignore = {dictionary.bos(), dictionary.eos()}
    texts, steps = {}, {}
    for sample in batches(task.dataset(subset), ids, batch_size):
        if loaded.device == "cuda":
            sample = utils.move_to_cuda(sample)
        hypotheses = task.inference_step(generator, loaded.models, sample)
        for sentence_id, hypothesis in zip(sample["id"].tolist(), hypotheses):
            best = hypothesis[0]
            texts[sentence_id] = dictionary.string(best["tokens"].int().cpu(), "sentencepiece",
                                                   extra_symbols_to_ignore=ignore)
            steps[sentence_id] = best.get("steps")
    if sorted(texts) != sorted(ids):
        raise RuntimeError(f"{loaded.checkpoint} on {subset}: {len(texts)} translations for {len(ids)} sentences")
    return [texts[i] for i in ids], [steps[i] for i in ids]


def score(hypotheses: list, reference_file: str) -> dict:
    """sacreBLEU and chrF (with signatures), the length ratio and the repeated-word shares of HYPOTHESES."""
    import sacrebleu

    references = Path(reference_file).read_text(encoding="utf-8").splitlines()
    if len(references) != len(hypotheses):
        raise RuntimeError(f"{len(hypotheses)} translations for {len(references)} lines of {reference_file}")
    bleu, chrf = sacrebleu.metrics.BLEU(), sacrebleu.metrics.CHRF()
    bleu_score = bleu.corpus_score(hypotheses, [references])
    return {"bleu": bleu_score.score, "chrf": chrf.corpus_score(hypotheses, [references]).score,
            "bleu_signature": str(bleu.get_signature()), "chrf_signature": str(chrf.get_signature()),
            "length_ratio": bleu_score.sys_len / max(bleu_score.ref_len, 1),
            "repeated_words": repeated_word_share(hypotheses),
            "reference_repeated_words": repeated_word_share(references)}


def repeated_word_share(lines: list) -> float:
    """The share of LINES in which some word directly repeats (case-insensitive): the typical error of
    parallel decoding, where neighbouring positions predict the same word."""
    def repeats(line: str) -> bool:
        words = [word.lower() for word in line.split() if any(character.isalnum() for character in word)]
        return any(first == second for first, second in zip(words, words[1:]))
    return sum(map(repeats, lines)) / max(len(lines), 1)
