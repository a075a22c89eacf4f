"""``translation_gmlm``: translation with a generative masked language model (PaDIR; Li et al., ICML 2024).

Adds to fairseq's ``translation`` task: the ``<mask>`` and ``<length>`` symbols (appended to the dictionaries
that fairseq-preprocess wrote), target corruption for training (``noising.py``), and the iterative-refinement
generator with its decoding options. Those options live here once; at generate time they are read from the
command line, during ``--eval-bleu`` from ``--eval-bleu-args`` (falling back to the values here).
"""

import logging
from argparse import Namespace
from dataclasses import dataclass, field
from typing import Optional

from omegaconf import II

import torch
from fairseq.dataclass import ChoiceEnum
from fairseq.optim.amp_optimizer import AMPOptimizer
from fairseq.tasks import register_task
from fairseq.tasks.translation import TranslationConfig, TranslationTask

from fairseq_gmlm import noising
from fairseq_gmlm.generation.refinement import GMLMGenerator, RefinementOptions, Vocabulary
from fairseq_gmlm.generation.rejecters import REJECTERS, REPLACEMENTS
from fairseq_gmlm.models.gmlm_t5 import LENGTH_SYMBOL, MASK_SYMBOL

logger = logging.getLogger(__name__)


@dataclass
class TranslationGMLMConfig(TranslationConfig):
    # ---- corruption of the target during training ----
    mask_ratio: Optional[float] = field(
        default=None, metadata={"help": "fixed masking (noise) ratio per example; unset: drawn from U(0,1)"}
    )
    random_token_prob: Optional[float] = field(
        default=None, metadata={"help": "share of noised tokens replaced by a random token; unset: U(0,0.5)"}
    )
    keep_prob: Optional[float] = field(
        default=None, metadata={"help": "share of noised tokens left unchanged; unset: U(0,0.5)"}
    )
    # ---- decoding (also used by unrolled training to build the next stage's input) ----
    decoder_init: ChoiceEnum(["mask", "random"]) = field(
        default="mask", metadata={"help": "initial decoder tokens: all <mask>, or uniformly random words"}
    )
    rejecter: ChoiceEnum(list(REJECTERS)) = field(
        default="linear",
        metadata={"help": "which predictions to reject after a pass: keep all (passthrough), Mask-Predict's "
                          "linear schedule, the k lowest (bottom-k) or a fraction (bottom-fraction)"},
    )
    reject_k: int = field(default=1, metadata={"help": "tokens rejected per pass by --rejecter bottom-k"})
    reject_fraction: float = field(default=0.1, metadata={"help": "share rejected by --rejecter bottom-fraction"})
    stutter_remask: bool = field(
        default=True,
        metadata={"help": "also reject a token equal to its left neighbour; after the last pass such repeats "
                          "are dropped from the output"},
    )
    replacement: ChoiceEnum(list(REPLACEMENTS)) = field(
        default="initial",
        metadata={"help": "what a rejected position holds next pass: the previous input, the initial token "
                          "(re-masking under --decoder-init mask), or the argmax of log-probs summed over passes"},
    )
    restarts: int = field(default=1, metadata={"help": "independent random restarts per length candidate"})
    brevity_penalty: float = field(
        default=0.0,
        metadata={"help": "alpha in ((5+len)/6)^alpha dividing a candidate's summed log-prob; 0: mean log-prob"},
    )
    seed: int = II("common.seed")


# Decoding options of this task, in RefinementOptions' names.
_TASK_DECODING = {
    "decoder_init": "init", "rejecter": "rejecter", "reject_k": "reject_k", "reject_fraction": "reject_fraction",
    "stutter_remask": "stutter", "replacement": "replacement", "restarts": "restarts",
    "brevity_penalty": "brevity_alpha",
}


@register_task("translation_gmlm", dataclass=TranslationGMLMConfig)
class TranslationGMLMTask(TranslationTask):
    cfg: TranslationGMLMConfig

    def __init__(self, cfg: TranslationGMLMConfig, src_dict, tgt_dict):
        for dictionary in {id(src_dict): src_dict, id(tgt_dict): tgt_dict}.values():
            dictionary.add_symbol(MASK_SYMBOL)
            dictionary.add_symbol(LENGTH_SYMBOL)
        super().__init__(cfg, src_dict, tgt_dict)
        mask, length = tgt_dict.index(MASK_SYMBOL), tgt_dict.index(LENGTH_SYMBOL)
        self.vocab = Vocabulary(
            pad=tgt_dict.pad(), eos=tgt_dict.eos(), mask=mask,
            random_low=tgt_dict.nspecial, random_high=min(mask, length),
            never_predicted=sorted({tgt_dict.pad(), tgt_dict.bos(), tgt_dict.eos(), mask, length}),
        )

    # ---- decoding ----------------------------------------------------------------------------------------

    def refinement_options(self, args=None) -> RefinementOptions:
        """Decoding options from generation ``args`` (fairseq's flags and, where given, ours), else the task's."""
        args = args if args is not None else Namespace()
        if getattr(args, "iter_decode_eos_penalty", 0.0) > 0:
            raise ValueError("--iter-decode-eos-penalty is not supported by translation_gmlm; use --brevity-penalty")
        if getattr(args, "iter_decode_with_external_reranker", False):
            raise ValueError("--iter-decode-with-external-reranker is not supported by translation_gmlm")
        ours = {name: getattr(args, task_name, getattr(self.cfg, task_name)) for task_name, name in _TASK_DECODING.items()}
        ours["init"], ours["rejecter"], ours["replacement"] = str(ours["init"]), str(ours["rejecter"]), str(ours["replacement"])
        return RefinementOptions(
            max_iter=getattr(args, "iter_decode_max_iter", 10),
            length_candidates=getattr(args, "iter_decode_with_beam", 1),
            early_stop=not getattr(args, "iter_decode_force_max_iter", False),
            retain_history=getattr(args, "retain_iter_history", False),
            retain_dropout=getattr(args, "retain_dropout", False),
            sampling=getattr(args, "sampling", False),
            temperature=getattr(args, "temperature", 1.0),
            top_k=max(getattr(args, "sampling_topk", -1), 0),
            max_len_a=getattr(args, "max_len_a", 0.0),
            max_len_b=getattr(args, "max_len_b", 200),
            **ours,
        ).check()

    def build_generator(self, models, args, **unused):
        return GMLMGenerator(self.vocab, self.refinement_options(args))

    # ---- training ----------------------------------------------------------------------------------------

    def corrupt(self, sample, update: int):
        """Add ``sample["corruption"]`` and make it the decoder input."""
        target = sample["target"]
        keys = noising.example_keys(sample["id"], self.cfg.seed, update)
        corruption = noising.corrupt(
            target, keys, pad=self.vocab.pad, eos=self.vocab.eos, mask=self.vocab.mask,
            random_low=self.vocab.random_low, random_high=self.vocab.random_high,
            mask_ratio=self.cfg.mask_ratio, random_prob=self.cfg.random_token_prob, keep_prob=self.cfg.keep_prob,
        )
        sample["corruption"] = corruption
        sample["net_input"]["prev_output_tokens"] = corruption.tokens
        return sample

    def train_step(self, sample, model, criterion, optimizer, update_num, ignore_grad=False):
        model.train()
        model.set_num_updates(update_num)
        sample = self.corrupt(sample, update_num)
        with autocast_for(model, optimizer):
            loss, sample_size, logging_output = criterion(model, sample)
        if ignore_grad:
            loss *= 0
        optimizer.backward(loss)
        return loss, sample_size, logging_output

    def get_batch_iterator(self, dataset, *args, required_batch_size_multiple=1, **kwargs):
        # fairseq rounds batches to --required-batch-size-multiple (default 8) and can lose the remainder
        # (fairseq-notes.md, defect 2). Only training batches need the rounding; every other split keeps all.
        if dataset is not self.datasets.get(self.cfg.train_subset):
            required_batch_size_multiple = 1
        return super().get_batch_iterator(
            dataset, *args, required_batch_size_multiple=required_batch_size_multiple, **kwargs
        )

    def valid_step(self, sample, model, criterion):
        # Validation corrupts with a fixed update number, so the valid loss is comparable across epochs.
        return super().valid_step(self.corrupt(sample, update=0), model, criterion)


def autocast_for(model, optimizer):
    """Autocast the forward under --amp (fp16 on CUDA, bf16 on CPU) and under --fp16/--bf16 (the parameters'
    half dtype), so softmax, norms and losses run in float32; a no-op in full precision."""
    device_type = next(model.parameters()).device.type
    param_dtype = next(model.parameters()).dtype
    if isinstance(optimizer, AMPOptimizer):
        dtype = torch.float16 if device_type == "cuda" else torch.bfloat16
    elif param_dtype in (torch.float16, torch.bfloat16):
        dtype = param_dtype
    else:
        return torch.autocast(device_type, enabled=False)
    return torch.autocast(device_type, dtype=dtype)
