"""``translation_gmlm``: translation with a generative masked language model (PaDIR; Li et al., ICML 2024).

Adds to fairseq's ``translation`` task: the ``<mask>`` and ``<length>`` symbols (appended to the dictionaries
that fairseq-preprocess wrote), target corruption for training (``noising.py``), and the iterative-refinement
generator with its decoding options. Those options live here once; at generate time they are read from the
command line, during ``--eval-bleu`` from ``--eval-bleu-args`` (falling back to the values here).
"""

import logging
import os
from argparse import Namespace
from dataclasses import dataclass, field
from enum import Enum
from typing import Optional

from omegaconf import II

import torch
from fairseq import metrics, utils
from fairseq.dataclass import ChoiceEnum
from fairseq.dataclass.configs import GenerationConfig
from fairseq.tasks import register_task
from fairseq.tasks.translation import TranslationConfig, TranslationTask

from fairseq_gmlm import noising
from fairseq_gmlm.checkpoints import CHECKPOINT_PATH_KEY, check_dictionary, dictionary_fingerprint
from fairseq_gmlm.errors import UsageError
from fairseq_gmlm.generation.refinement import (
    LENGTH_CHOICES, STOP_RULES, GMLMGenerator, RefinementOptions, Vocabulary,
)
from fairseq_gmlm.generation.rejecters import (
    CANDIDATE_SCORES, REJECTERS, REPLACEMENTS, REPREDICTIONS, STUTTER_RULES, predictable, stutter_rule,
)
from fairseq_gmlm.generation.trace import TracingGenerator
from fairseq_gmlm.models.gmlm_t5 import LENGTH_SYMBOL, MASK_SYMBOL
from fairseq_gmlm.models.warm_start import init_from_ar
from fairseq_gmlm.precision import autocast_for

logger = logging.getLogger(__name__)


@dataclass
class TranslationGMLMConfig(TranslationConfig):
    # ---- corruption of the target during training ----
    mask_ratio: str = field(
        default="uniform", metadata={"help": "masking (noise) ratio per example: a number in [0,1], 'uniform' to "
                                             "draw it from U(0,1) per example, or LOW:HIGH to draw it from "
                                             "U(LOW,HIGH)"}
    )
    random_token_prob: str = field(
        default="0.1", metadata={"help": "share of noised tokens replaced by a random token: a number, or "
                                         "'uniform' for U(0,0.5) per example"}
    )
    keep_prob: str = field(
        default="0.1", metadata={"help": "share of noised tokens left unchanged: a number, or 'uniform' for "
                                         "U(0,0.5) per example"}
    )
    neighbour_copy_prob: float = field(
        default=0.0, metadata={"help": "share of noised tokens replaced by a copy of a neighbouring reference word "
                                       "(left or right), so that training shows the model stutters to repair (measured "
                                       "worse: docs/training.md)"}
    )
    predicted_token_prob: float = field(
        default=0.0,
        metadata={"help": "share of noised tokens replaced by the model's own prediction: a first pass without "
                          "gradient reads the target with every noised token masked, and a share of the noised "
                          "positions (drawn per position) take its argmax words, so the input holds the errors "
                          "refinement has to correct (SMART, CMLMC); costs that pass per update (measured worse at the "
                          "recipe's budget: docs/training.md). 0: off"},
    )
    glancing_ratio: float = field(
        default=0.0,
        metadata={"help": "glancing training (GLAT): instead of the random corruption above, a first pass without "
                          "gradient on the fully masked target; floor(ratio x its wrong words) reference words are "
                          "revealed, the rest masked and scored; it never shows a wrong input word, so decode its model in one "
                          "pass or with --repredict open (measured at the recipe's budget: docs/training.md). 0: off"},
    )
    upsample_primary: int = field(
        default=1,  # fairseq's -1 breaks training on several shards (train, train1, ...): defect 10 of fairseq-fixes.md
        metadata={"help": "how many times the first training shard (train) is repeated beside train1, train2, ..."},
    )
    refinement_diagnostics: Optional[str] = field(
        default=None,
        metadata={"help": "at generate time, write each sentence's passes (tokens, their log-probs, predicted "
                          "and reference length) to this file as JSON lines; gmlm-diagnose reports on it"},
    )
    # ---- decoding (unrolled training has its own: gmlm_loss's --train-* options) ----
    decoder_init: ChoiceEnum(["mask", "random"]) = field(
        default="mask", metadata={"help": "initial decoder tokens: all <mask>, or uniformly random words"}
    )
    rejecter: ChoiceEnum(list(REJECTERS)) = field(
        default="linear",
        metadata={"help": "which predictions to reject after a pass: keep all (passthrough), Mask-Predict's "
                          "linear schedule, MaskGIT's cosine schedule (more re-masked early), the k lowest (bottom-k), "
                          "a fraction (bottom-fraction), or those below --reject-threshold (confidence: passes adapt "
                          "per sentence, up to --iter-decode-max-iter + 1)"},
    )
    reject_k: int = field(default=1, metadata={"help": "tokens rejected per pass by --rejecter bottom-k"})
    reject_fraction: float = field(default=0.1, metadata={"help": "share rejected by --rejecter bottom-fraction"})
    reject_threshold: float = field(
        default=0.9,
        metadata={"help": "--rejecter confidence keeps every prediction at least this probable (and at least one "
                          "more position per pass)"},
    )
    stutter_remask: ChoiceEnum(list(STUTTER_RULES)) = field(
        default="first",
        metadata={"help": "a word equal to its neighbour: 'first' gives the less confident copy its next best word "
                          "and re-masks it first, within the schedule's count; 'on' (PaDIR's) also rejects every "
                          "second copy and drops repeats left after the last pass from the output; 'off'"},
    )
    replacement: ChoiceEnum(list(REPLACEMENTS)) = field(
        default="initial",
        metadata={"help": "what a rejected position holds next pass: the previous input, the initial token "
                          "(re-masking under --decoder-init mask), or the argmax of log-probs summed over passes"},
    )
    repredict: ChoiceEnum(list(REPREDICTIONS)) = field(
        default="all",
        metadata={"help": "which positions take a pass's new prediction: every word (all, PaDIR's: a word kept from "
                          "an earlier pass can change), or only those the pass's input held open (open, "
                          "Mask-Predict's: a kept word stays, with the log-probability it was predicted with)"},
    )
    restarts: int = field(
        default=1,
        metadata={"help": "independent restarts per length candidate; they differ only with --decoder-init random "
                          "or --sampling"},
    )
    # The mean since 2026-12-07: on three GMLMs of the benchmark's recipe the mode ran short (length ratio 0.91-0.94),
    # the mean did not (0.97-1.01), +0.62 to +2.02 BLEU on LibreOffice-help test, -0.09 to -0.53 on Ding, chrF up on
    # all twelve sets (docs/decoding.md, "The mean length on the recipe's models").
    length_choice: ChoiceEnum(list(LENGTH_CHOICES)) = field(
        default="mean",
        metadata={"help": "the length to decode: the rounded mean of the length model's distribution (mean), or its "
                          "most likely length (mode, fairseq's NAT models' choice), followed by the most likely ones "
                          "with --iter-decode-with-beam > 1"},
    )
    length_offsets: int = field(
        default=1,
        metadata={"help": "odd B: also try each of the --iter-decode-with-beam predicted lengths shifted by "
                          "-(B-1)/2 ... +(B-1)/2 (PaDIR's length beam), within [2, --max-len-a/b]; 1: no offsets"},
    )
    brevity_penalty: float = field(
        default=0.0,
        metadata={"help": "alpha in ((5+len)/6)^alpha dividing a candidate's summed log-prob; 0: mean log-prob"},
    )
    candidate_score: ChoiceEnum(list(CANDIDATE_SCORES)) = field(
        default="mean",
        metadata={"help": "how length candidates compete: mean (summed token and length log-probs over the length) "
                          "or sum (PaDIR: the summed token log-probs)"},
    )
    stop_rule: ChoiceEnum(list(STOP_RULES)) = field(
        default="input",
        metadata={"help": "a candidate stops early when its next input equals its current one (input, PaDIR's) or "
                          "a pass repeats the previous prediction (prediction); --iter-decode-force-max-iter: never"},
    )
    length_group_size: int = field(
        default=32,  # batch 128, 2 CPU cores, 5 passes: 1.41x / 1.65x the sentences per second of 0 (docs/decoding.md)
        metadata={"help": "refine a batch's candidates in groups of at most this many, shortest first, each on a "
                          "canvas as wide as its own longest candidate (less padding at large batches); 0: all "
                          "together"},
    )
    seed: int = II("common.seed")


@register_task("translation_gmlm", dataclass=TranslationGMLMConfig)
class TranslationGMLMTask(TranslationTask):
    cfg: TranslationGMLMConfig
    inference_lines = 0  # fairseq-interactive input lines seen so far, to name them in warnings
    inference_source_limit: Optional[int] = None  # set by build_generator: the tightest source limit of the models

    def __init__(self, cfg: TranslationGMLMConfig, src_dict, tgt_dict):
        for dictionary in {id(src_dict): src_dict, id(tgt_dict): tgt_dict}.values():
            dictionary.add_symbol(MASK_SYMBOL)
            dictionary.add_symbol(LENGTH_SYMBOL)
        super().__init__(cfg, src_dict, tgt_dict)
        self.mask_ratio = parse_ratio_range("--mask-ratio", cfg.mask_ratio)
        self.random_token_prob = parse_probability("--random-token-prob", cfg.random_token_prob)
        self.keep_prob = parse_probability("--keep-prob", cfg.keep_prob)
        if not 0.0 <= cfg.neighbour_copy_prob <= 1.0:
            raise UsageError(f"--neighbour-copy-prob must be in [0, 1], got {cfg.neighbour_copy_prob}")
        if (self.random_token_prob or 0.0) + (self.keep_prob or 0.0) + cfg.neighbour_copy_prob > 1.0:
            raise UsageError("--random-token-prob plus --keep-prob plus --neighbour-copy-prob must not exceed 1")
        if cfg.upsample_primary < 1:
            raise UsageError(f"--upsample-primary must be at least 1 (times the first training shard is repeated), "
                             f"got {cfg.upsample_primary}")
        if not 0.0 <= cfg.glancing_ratio <= 1.0:
            raise UsageError(f"--glancing-ratio must be in [0, 1] (0 = off), got {cfg.glancing_ratio}")
        if not 0.0 <= cfg.predicted_token_prob <= 1.0:
            raise UsageError(f"--predicted-token-prob must be in [0, 1] (0 = off), got {cfg.predicted_token_prob}")
        for flag, value in (("--predicted-token-prob", cfg.predicted_token_prob),
                            ("--neighbour-copy-prob", cfg.neighbour_copy_prob)):
            if cfg.glancing_ratio > 0 and value > 0:
                raise UsageError(f"--glancing-ratio replaces the random corruption, so {flag} would be ignored: set "
                                 f"one of them to 0")
        mask, length = tgt_dict.index(MASK_SYMBOL), tgt_dict.index(LENGTH_SYMBOL)
        self.vocab = Vocabulary(
            pad=tgt_dict.pad(), eos=tgt_dict.eos(), mask=mask,
            random_low=tgt_dict.nspecial, random_high=min(mask, length),
            never_predicted=sorted({tgt_dict.pad(), tgt_dict.bos(), tgt_dict.eos(), mask, length}),
        )

    def build_model(self, cfg, from_checkpoint=False):
        model = super().build_model(cfg, from_checkpoint)
        path = getattr(cfg, "init_from_ar", None)
        if path and not from_checkpoint:  # fairseq-train; a trained model is loaded over it when resuming
            init_from_ar(model, path)
        return model

    # ---- checkpoints -------------------------------------------------------------------------------------

    def state_dict(self):
        # fairseq's trainer saves this in every checkpoint; fairseq-generate/-interactive hand it back below.
        return {**super().state_dict(), "dictionary": dictionary_fingerprint(self.tgt_dict)}

    def load_state_dict(self, state_dict):
        state_dict = dict(state_dict)
        self.check_checkpoint(state_dict, state_dict.pop(CHECKPOINT_PATH_KEY, "(unknown file)"))
        state_dict.pop("dictionary", None)
        super().load_state_dict(state_dict)

    def check_checkpoint(self, task_state: dict, checkpoint_path: str) -> None:
        """Raise if the checkpoint was trained with another dictionary. Called by fairseq-generate/-interactive
        through ``load_state_dict``, and by fairseq-train before resuming (``fairseq_fixes/checkpoint_loading.py``)."""
        saved = task_state.get("dictionary")
        if saved is not None:
            data = utils.split_paths(self.cfg.data)[0]
            dictionary_path = os.path.join(data, f"dict.{self.cfg.target_lang}.txt")
            check_dictionary(saved, self.tgt_dict, dictionary_path, checkpoint_path)

    # ---- input to fairseq-generate and fairseq-interactive ------------------------------------------------
    # fairseq skips (or, without --skip-invalid-size-inputs-valid-test, aborts on) a source longer than
    # --max-source-positions. Here every input gets an output line: a longer source is truncated to its first
    # (limit - 1) tokens plus the final EOS, with a warning; an empty source translates to the empty sentence.

    def load_dataset(self, split, epoch=1, combine=False, **kwargs):
        super().load_dataset(split, epoch=epoch, combine=combine, **kwargs)
        if split == self.cfg.train_subset or self.cfg.truncate_source:
            return  # training skips over-long pairs (fairseq warns); --truncate-source already truncated
        limit = self.cfg.max_source_positions
        src_sizes = self.datasets[split].src_sizes  # with EOS
        too_long, empty = (src_sizes > limit).nonzero()[0], (src_sizes <= 1).nonzero()[0]
        if empty.size:
            logger.warning("%s: %d empty source sentences (ids %s): their translations are empty", split, empty.size,
                           _first_ids(empty))
        if too_long.size:
            logger.warning("%s: %d source sentences longer than --max-source-positions %d (ids %s) are truncated to "
                           "their first %d tokens and EOS",
                           split, too_long.size, limit, _first_ids(too_long), limit - 1)
            self.cfg.truncate_source = True  # fairseq's own truncation (TruncateDataset), for this split only
            try:
                super().load_dataset(split, epoch=epoch, combine=combine, **kwargs)
            finally:
                self.cfg.truncate_source = False

    def build_dataset_for_inference(self, src_tokens, src_lengths, constraints=None):
        limit = min(self.cfg.max_source_positions, self.inference_source_limit or self.cfg.max_source_positions)
        checked = []
        for tokens in src_tokens:
            self.inference_lines += 1
            checked.append(self.check_inference_source(tokens, limit, self.inference_lines))
        return super().build_dataset_for_inference(checked, [t.numel() for t in checked], constraints)

    def check_inference_source(self, tokens: torch.Tensor, limit: int, line: int) -> torch.Tensor:
        """Warn about input line ``line`` (its token ids, ending in EOS) and truncate it to ``limit`` tokens."""
        words = tokens.numel() - 1
        if words == 0:
            logger.warning("input line %d is empty: its translation is empty", line)
        unknown = int(tokens.eq(self.src_dict.unk()).sum())
        if unknown:
            logger.warning("input line %d: %d of %d tokens are not in the dictionary and read as %s", line, unknown,
                           words, self.src_dict.unk_word)
        if tokens.numel() > limit:
            logger.warning("input line %d has %d tokens, more than --max-source-positions %d: translating its first "
                           "%d tokens", line, words, limit, limit - 1)
        return truncate_source(tokens, limit, self.src_dict.eos())

    def inference_step(self, generator, models, sample, prefix_tokens=None, constraints=None):
        with autocast_for(models[0]):  # --fp16/--bf16/--amp: see fairseq_gmlm.precision
            hypotheses = super().inference_step(generator, models, sample, prefix_tokens, constraints)
        return blank_empty_sources(hypotheses, sample["net_input"]["src_tokens"], self.src_dict.pad(),
                                   self.src_dict.eos())

    # ---- decoding ----------------------------------------------------------------------------------------

    def refinement_options(self, args=None) -> RefinementOptions:
        """Decoding options from generation ``args`` (fairseq's flags and, where given, ours), else the task's."""
        return refinement_options(self.cfg, args if args is not None else Namespace()).check()

    def build_generator(self, models, args, **unused):
        self.inference_source_limit = min(model.max_positions()[0] for model in models)
        options = self.refinement_options(args)
        if getattr(self.cfg, "refinement_diagnostics", None):  # the trace is built from the per-pass history
            return TracingGenerator(GMLMGenerator(self.vocab, options._replace(retain_history=True)),
                                    self.cfg.refinement_diagnostics, self.tgt_dict, options.retain_history)
        return GMLMGenerator(self.vocab, options)

    # ---- training ----------------------------------------------------------------------------------------

    def corrupt(self, sample, update: int, model=None):
        """Add ``sample["corruption"]`` and make it the decoder input: glancing when MODEL is given and
        --glancing-ratio > 0 (training), else the random corruption, with --predicted-token-prob of its noised
        words MODEL's own predictions when MODEL is given."""
        target = sample["target"]
        keys = noising.example_keys(sample["id"], self.cfg.seed, update)
        if model is not None and self.cfg.glancing_ratio > 0:
            predicted = self.first_pass(model, sample)
            corruption = noising.glance(target, predicted, keys, ratio=self.cfg.glancing_ratio, pad=self.vocab.pad,
                                        eos=self.vocab.eos, mask=self.vocab.mask)
        else:
            corruption = noising.corrupt(
                target, keys, pad=self.vocab.pad, eos=self.vocab.eos, mask=self.vocab.mask,
                random_low=self.vocab.random_low, random_high=self.vocab.random_high,
                mask_ratio=self.mask_ratio, random_prob=self.random_token_prob, keep_prob=self.keep_prob,
                neighbour_prob=self.cfg.neighbour_copy_prob,
            )
            if model is not None and self.cfg.predicted_token_prob > 0:
                canvas = target.masked_fill(corruption.noised, self.vocab.mask)  # B x T
                predicted = self.first_pass(model, sample, canvas)
                corruption = noising.with_predictions(corruption, predicted, keys, prob=self.cfg.predicted_token_prob)
        sample["corruption"] = corruption
        sample["net_input"]["prev_output_tokens"] = corruption.tokens
        return sample

    def first_pass(self, model, sample, canvas: Optional[torch.Tensor] = None) -> torch.Tensor:
        """A parallel pass without gradient over CANVAS (B x T; default the fully masked target, glancing's), in
        training mode, dropout included, as the pass that follows. Returns B x T: the argmax word at each
        ``<mask>`` of CANVAS (only those are projected onto the vocabulary), CANVAS's token elsewhere."""
        vocab, net_input = self.vocab, sample["net_input"]
        if canvas is None:
            canvas = noising.fully_masked(sample["target"], pad=vocab.pad, eos=vocab.eos, mask=vocab.mask)
        masked = canvas.eq(vocab.mask)  # B x T
        with torch.no_grad():
            encoder_out = model.encode(net_input["src_tokens"], net_input["src_lengths"])
            logits = model.decode(canvas, encoder_out, masked)  # P x V
            return canvas.masked_scatter(masked, predictable(logits, vocab.never_predicted).argmax(-1))

    def train_step(self, sample, model, criterion, optimizer, update_num, ignore_grad=False):
        model.train()
        model.set_num_updates(update_num)
        with autocast_for(model, optimizer):
            sample = self.corrupt(sample, update_num, model)
            loss, sample_size, logging_output = criterion(model, sample)
        if ignore_grad:
            loss *= 0
        optimizer.backward(loss)
        return loss, sample_size, logging_output

    def get_batch_iterator(self, dataset, *args, required_batch_size_multiple=1, **kwargs):
        # fairseq rounds batches to --required-batch-size-multiple (default 8) and can lose the remainder
        # (docs/fairseq-fixes.md, defect 8). Only training batches need the rounding; every other split keeps all.
        if dataset is not self.datasets.get(self.cfg.train_subset):
            required_batch_size_multiple = 1
        return super().get_batch_iterator(
            dataset, *args, required_batch_size_multiple=required_batch_size_multiple, **kwargs
        )

    def reduce_metrics(self, logging_outputs, criterion):
        super().reduce_metrics(logging_outputs, criterion)
        # The stock task logs BLEU only when some hypothesis of the batch has an n-gram, and --best-checkpoint-metric
        # bleu then fails with KeyError (docs/fairseq-fixes.md, defect 9). Where it did not, log the same derived meter
        # (0 until some batch brings n-gram counts); a plain scalar would clash with the stock one of another batch.
        validating = any("_bleu_sys_len" in log for log in logging_outputs)
        if validating and not any(log.get("_bleu_totals_0", 0) for log in logging_outputs):
            metrics.log_derived("bleu", bleu_or_zero)

    def valid_step(self, sample, model, criterion):
        # Validation corrupts with a fixed update number, so the valid loss is comparable across epochs.
        return super().valid_step(self.corrupt(sample, update=0), model, criterion)


def bleu_or_zero(meters) -> float:
    """Corpus BLEU from the summed n-gram statistics of the validation batches (as fairseq's translation task
    computes it), 0 when no batch had any hypothesis n-gram."""
    if "_bleu_totals" not in meters or max(meters["_bleu_totals"].sum) == 0:
        return 0.0
    from sacrebleu.metrics import BLEU

    bleu = BLEU.compute_bleu(correct=meters["_bleu_counts"].sum, total=meters["_bleu_totals"].sum,
                             sys_len=int(meters["_bleu_sys_len"].sum), ref_len=int(meters["_bleu_ref_len"].sum),
                             smooth_method="exp")
    return round(bleu.score, 2)


GENERATION_DEFAULTS = GenerationConfig()  # fairseq's generation flags, where ``args`` lacks one


def refinement_options(cfg: TranslationGMLMConfig, args: Namespace) -> RefinementOptions:
    """Unchecked RefinementOptions: fairseq's generation flags from ``args`` (its defaults where missing), this
    task's decoding options from ``args`` where given (``--eval-bleu-args``, tests), else from ``cfg``."""
    def flag(name):
        return getattr(args, name, getattr(GENERATION_DEFAULTS, name))

    if flag("iter_decode_eos_penalty") > 0:
        raise UsageError("--iter-decode-eos-penalty is not supported by translation_gmlm; use --brevity-penalty")
    fairseq = dict(
        max_iter=flag("iter_decode_max_iter"), length_candidates=flag("iter_decode_with_beam"),
        sampling=flag("sampling"), temperature=flag("temperature"), top_k=max(flag("sampling_topk"), 0),
        max_len_a=flag("max_len_a"), max_len_b=flag("max_len_b"), early_stop=not flag("iter_decode_force_max_iter"),
        retain_history=flag("retain_iter_history"), retain_dropout=flag("retain_dropout"),
        reranker=flag("iter_decode_with_external_reranker"),
    )
    ours = {name: getattr(args, name, getattr(cfg, name)) for name in RefinementOptions._fields if name not in fairseq}
    ours = {name: str(value) if isinstance(value, Enum) else value for name, value in ours.items()}  # ChoiceEnum
    ours["stutter_remask"] = stutter_rule(ours["stutter_remask"])
    return RefinementOptions(**fairseq, **ours)


def parse_probability(flag: str, value) -> Optional[float]:
    """'uniform' -> None (drawn per example), else a float in [0, 1]."""
    if str(value).strip().lower() == "uniform":
        return None
    try:
        number = float(value)
    except ValueError:
        raise UsageError(f"{flag} must be a number in [0, 1] or 'uniform', got {value!r}") from None
    if not 0.0 <= number <= 1.0:
        raise UsageError(f"{flag} must be in [0, 1], got {number}")
    return number


def parse_ratio_range(flag: str, value):
    """Like parse_probability, and LOW:HIGH (0 <= LOW <= HIGH <= 1) -> (LOW, HIGH), drawn from U(LOW, HIGH)."""
    if ":" not in str(value):
        return parse_probability(flag, value)
    low, high = (parse_probability(flag, part) for part in str(value).split(":", 1))
    if low is None or high is None or low > high:
        raise UsageError(f"{flag} LOW:HIGH needs two numbers with 0 <= LOW <= HIGH <= 1, got {value!r}")
    return (low, high)


def truncate_source(tokens: torch.Tensor, limit: int, eos: int) -> torch.Tensor:
    """A source of more than ``limit`` tokens (EOS included) cut to its first ``limit - 1`` tokens and EOS."""
    if tokens.numel() <= limit:
        return tokens
    return torch.cat([tokens[: limit - 1], tokens.new_tensor([eos])])


def blank_empty_sources(hypotheses, src_tokens: torch.Tensor, pad: int, eos: int):
    """Give every sentence whose source (B x S) has no token but EOS the empty translation (just EOS), whatever
    the model would invent for it."""
    empty = (src_tokens.ne(pad) & src_tokens.ne(eos)).sum(1).eq(0)  # B
    for row in empty.nonzero().view(-1).tolist():
        for hypothesis in hypotheses[row]:
            hypothesis.update(tokens=src_tokens.new_tensor([eos]), score=torch.tensor(0.0),
                              positional_scores=torch.zeros(1), alignment=None)
    return hypotheses


def _first_ids(ids, shown: int = 10) -> str:
    return ", ".join(map(str, ids[:shown].tolist())) + (", ..." if len(ids) > shown else "")
