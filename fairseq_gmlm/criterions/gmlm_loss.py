"""``gmlm_loss``: label-smoothed token loss on the corrupted target, plus the length loss.

Li et al., "Promises and Pitfalls of Generative Masked Language Modeling" (ICML 2024). Tokens are scored at
all real positions, only the noised ones, or only the ``<mask>``ed ones (``--loss-positions``); EOS is scored
under every choice. With
``--train-stages N`` (unrolled training) stage i's argmax output, with rejected positions replaced as at
inference, is stage i+1's decoder input; later stages are scored on all real tokens and no gradient flows
through the choice. Which positions are rejected and what replaces them is this criterion's ``--train-*``
options, not the task's decoding flags.

``--loss-weighting inverse-ratio`` weights each example's scored tokens (not EOS) by 1 / its noise ratio, the
masked-diffusion ELBO (MDLM: Sahoo et al., 2024; LLaDA: Nie et al., 2025); the ratio is floored at
``MIN_RATIO`` so that one nearly clean example cannot dominate a batch, and ``sample_size`` becomes the summed
weight, so the logged loss stays a (weighted) mean per token.

``--ar-loss-weight W`` adds the loss of an autoregressive model sharing every weight: one more decoder pass, on
the clean target shifted right under a causal mask (``GMLMT5Model.decode(causal=True)``), as the ``t5_ar`` that
``--init-from-ar`` starts from was trained; each real target token is scored with weight W and counts W in
``sample_size``. Beyond PaDIR; multi-task training with an autoregressive objective is Hao et al., "Multi-Task
Learning with Shared Encoder for Non-Autoregressive Machine Translation" (NAACL 2021), who share the encoder only.

The length loss is a per-sentence cross-entropy summed over sentences and weighted by
``--length-loss-factor``; like the token loss it is divided by ``sample_size`` (the number of scored tokens),
so its weight does not drift with the batch size and sums across workers stay exact. ``ntokens`` in the logging
output is the number of real target tokens (words and EOS, not padding) whatever is scored, so fairseq's wpb and
wps count the whole target.

Shapes: B batch, T target length, V vocabulary.
"""

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from fairseq import metrics
from fairseq.criterions import FairseqCriterion, register_criterion
from fairseq.dataclass import ChoiceEnum, FairseqDataclass

from fairseq_gmlm.errors import UsageError
from fairseq_gmlm.generation.refinement import refine_step
from fairseq_gmlm.generation.rejecters import (
    REJECTERS, REPLACEMENTS, STUTTER_RULES, Rejection, predictable, stutter_rule,
)

LOSS_POSITIONS = ("all", "noised", "masked")
LOSS_WEIGHTINGS = ("uniform", "inverse-ratio")
MIN_RATIO = 0.05  # --loss-weighting inverse-ratio: weights are at most 1 / MIN_RATIO


@dataclass
class GMLMLossConfig(FairseqDataclass):
    label_smoothing: float = field(default=0.1, metadata={"help": "label smoothing epsilon for the token loss"})
    loss_positions: ChoiceEnum(list(LOSS_POSITIONS)) = field(
        default="noised", metadata={"help": "score all real target tokens, only noised ones, or only <mask>ed ones"}
    )
    loss_weighting: ChoiceEnum(list(LOSS_WEIGHTINGS)) = field(
        default="uniform",
        metadata={"help": "uniform: every scored token counts once; inverse-ratio: an example's scored tokens count "
                          "1 / its noise ratio (the masked-diffusion ELBO of MDLM/LLaDA)"},
    )
    length_loss_factor: float = field(default=0.1, metadata={"help": "weight of the per-sentence length loss"})
    ar_loss_weight: float = field(
        default=0.0,
        metadata={"help": "also train the decoder as the autoregressive t5_ar it can be warm-started from: the clean "
                          "target, shifted right, under a causal mask, every real token scored, each with this weight "
                          "against a GMLM-scored token's 1 (one more decoder pass per batch; beyond PaDIR); 0: off"},
    )
    train_stages: int = field(
        default=1, metadata={"help": "unrolled training: stage i's output (after rejection) feeds stage i+1"}
    )
    # ---- unrolled training: how stage i's output becomes stage i+1's input, as the decoding flags of the same
    # names without "train-" do at generate time (where --rejecter's schedule spans --train-stages passes) ----
    train_rejecter: ChoiceEnum(list(REJECTERS)) = field(
        default="linear", metadata={"help": "which of a stage's predictions the next stage's input rejects"}
    )
    train_reject_k: int = field(default=1, metadata={"help": "words rejected per stage by --train-rejecter bottom-k"})
    train_reject_fraction: float = field(
        default=0.1, metadata={"help": "share rejected per stage by --train-rejecter bottom-fraction"}
    )
    train_reject_threshold: float = field(
        default=0.9, metadata={"help": "--train-rejecter confidence keeps every prediction at least this probable"}
    )
    train_stutter_remask: ChoiceEnum(list(STUTTER_RULES)) = field(
        default="off", metadata={"help": "a word equal to its neighbour, as --stutter-remask decodes it"}
    )
    train_replacement: ChoiceEnum(list(REPLACEMENTS)) = field(
        default="initial",
        metadata={"help": "what a rejected position holds in the next stage: the previous input, the corrupted "
                          "target's token, or the argmax of log-probs summed over stages"},
    )


def token_losses(logits: torch.Tensor, target: torch.Tensor, positions: torch.Tensor, smoothing: float):
    """Label-smoothed loss and NLL per position (B x T, zero outside ``positions``; or P for P x V logits and P
    targets), computed in float32.

    ``positions`` is B x T bool, or B x T float weights (P for P positions). Zero smoothing gives the plain NLL;
    the sums keep a gradient path even when ``positions`` is all False.
    """
    log_probs = F.log_softmax(logits.float(), -1)  # B x T x V
    nll = -log_probs.gather(-1, target.unsqueeze(-1)).squeeze(-1)  # B x T
    smooth = -log_probs.mean(-1)  # B x T
    loss = (1.0 - smoothing) * nll + smoothing * smooth
    weights = positions.to(loss.dtype)
    return loss * weights, nll * weights


def on_positions(values: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """B x T: VALUES (P) at the P True entries of POSITIONS (B x T bool) in row-major order, zero (False) elsewhere."""
    return torch.zeros(positions.shape, dtype=values.dtype, device=values.device).masked_scatter(positions, values)


def check_loss_weighting(kind: str) -> str:
    if kind not in LOSS_WEIGHTINGS:
        raise UsageError(f"unknown --loss-weighting {kind!r}; choose one of {', '.join(LOSS_WEIGHTINGS)}")
    return kind


def position_weights(kind: str, positions: torch.Tensor, eos: torch.Tensor, ratio) -> torch.Tensor:
    """B x T float weights of the scored ``positions``: 1 each (uniform), or 1 / max(ratio, MIN_RATIO) for the
    words of an example whose noise ratio (B x 1) is ``ratio`` (inverse-ratio; EOS keeps weight 1)."""
    weights = positions.float()
    if check_loss_weighting(kind) == "uniform":
        return weights
    if ratio is None:
        raise UsageError("--loss-weighting inverse-ratio needs the noise ratio of each example: use --task "
                         "translation_gmlm's corruption")
    inverse = 1.0 / ratio.float().clamp(min=MIN_RATIO)  # B x 1
    return torch.where(positions & ~eos, inverse.expand_as(weights), weights)


def scored_positions(kind: str, real: torch.Tensor, corruption, eos: torch.Tensor) -> torch.Tensor:
    """B x T bool. EOS (B x T bool ``eos``) is scored under every choice, as PaDIR does: it is never noised, yet
    its log-probability is part of every candidate's score at inference."""
    if kind == "all":
        return real
    if kind == "noised":
        return corruption.noised | eos
    if kind == "masked":
        return corruption.masked | eos
    raise UsageError(f"unknown --loss-positions {kind!r}; choose one of {', '.join(LOSS_POSITIONS)}")


@register_criterion("gmlm_loss", dataclass=GMLMLossConfig)
class GMLMLoss(FairseqCriterion):
    def __init__(self, task, label_smoothing, loss_positions, length_loss_factor, train_stages, loss_weighting,
                 train_rejecter, train_reject_k, train_reject_fraction, train_reject_threshold, train_stutter_remask,
                 train_replacement, ar_loss_weight):
        super().__init__(task)
        if train_stages < 1:
            raise UsageError(f"--train-stages must be >= 1, got {train_stages}")
        if ar_loss_weight < 0:
            raise UsageError(f"--ar-loss-weight must be >= 0 (0: no autoregressive loss), got {ar_loss_weight}")
        if not 0.0 <= label_smoothing < 1.0:
            raise UsageError(f"--label-smoothing must be in [0, 1), got {label_smoothing}")
        self.label_smoothing = label_smoothing
        self.loss_positions = str(loss_positions)
        self.loss_weighting = check_loss_weighting(str(loss_weighting))
        self.length_loss_factor = length_loss_factor
        self.ar_loss_weight = ar_loss_weight
        self.train_stages = train_stages
        self.rejection = Rejection(str(train_rejecter), train_reject_k, train_reject_fraction, train_reject_threshold,
                                   stutter_rule(train_stutter_remask),
                                   str(train_replacement)).check(flag_prefix="--train-")
        self.eos = task.target_dictionary.eos()

    def forward(self, model, sample, reduce=True):
        corruption = sample.get("corruption")
        if corruption is None:
            raise UsageError("gmlm_loss needs the corrupted target that --task translation_gmlm adds to each batch")
        target = sample["target"]  # B x T
        real = target.ne(self.padding_idx)  # B x T
        net_input = sample["net_input"]
        eos = target.eq(self.eos)
        positions = scored_positions(self.loss_positions, real, corruption, eos)  # B x T
        weights = position_weights(self.loss_weighting, positions, eos, corruption.ratio)  # B x T
        # One stage needs the logits of the scored positions only (P of B x T); unrolled stages refine every one.
        one_stage = self.train_stages == 1
        output = model(net_input["src_tokens"], net_input["src_lengths"], corruption.tokens,
                       logit_positions=positions if one_stage else None)
        # P x V, float32 once for the loss and the argmax (an argmax over bfloat16 logits is 3x slower)
        scored_logits = (output.logits if one_stage else output.logits[positions]).float()
        loss, nll = (on_positions(values, positions) for values in token_losses(  # B x T each, 0 where not scored
            scored_logits, target[positions], weights[positions], self.label_smoothing))
        correct = scored_logits.argmax(-1).eq(target[positions])  # P
        n_correct = correct.sum()
        n_masked_correct = (correct & corruption.masked[positions]).sum()  # masked positions are always scored
        sample_size = positions.sum() if self.loss_weighting == "uniform" else weights.sum()

        decoder_input, logits, summed, vocab = corruption.tokens, output.logits, None, self.task.vocab
        for stage in range(1, self.train_stages):
            with torch.no_grad():
                log_probs = F.log_softmax(logits.detach().float(), -1)
                summed = log_probs if summed is None else summed + log_probs
                tokens = predictable(log_probs, vocab.never_predicted).argmax(-1)  # B x T
                _, _, decoder_input = refine_step(log_probs, tokens, decoder_input, corruption.tokens, stage - 1,
                                                  self.train_stages - 1, vocab, self.rejection, summed)
            logits = model.decode(decoder_input, output.encoder_out)
            stage_loss, stage_nll = token_losses(logits, target, real, self.label_smoothing)
            loss, nll = loss + stage_loss, nll + stage_nll
            sample_size = sample_size + real.sum()

        ar_nll = None
        if self.ar_loss_weight > 0:  # the clean target under teacher forcing, as t5_ar's label_smoothed_cross_entropy
            ar_logits = model.decode(target, output.encoder_out, logit_positions=real, causal=True)  # R x V
            ar_loss, ar_nll = (on_positions(values, real) for values in token_losses(  # B x T each, unweighted
                ar_logits, target[real], real[real], self.label_smoothing))
            loss, nll = loss + self.ar_loss_weight * ar_loss, nll + self.ar_loss_weight * ar_nll
            sample_size = sample_size + self.ar_loss_weight * real.sum()

        length_loss = F.cross_entropy(output.length_logits.float(), real.sum(1), reduction="none")  # B
        per_sentence = loss.sum(1) + self.length_loss_factor * length_loss  # B
        total = per_sentence.sum() if reduce else per_sentence

        logging_output = {
            "loss": total.data.sum(),
            "nll_loss": nll.data.sum(),
            "length_loss": length_loss.data.sum(),
            "ntokens": real.sum().data,  # real target tokens (words and EOS), for fairseq's wpb/wps
            "nsentences": target.size(0),
            "sample_size": sample_size.data,
            "n_correct": n_correct.data,
            "n_scored_first_stage": positions.sum().data,
            "n_masked": corruption.masked.sum().data,
            "n_masked_correct": n_masked_correct.data,
        }
        if ar_nll is not None:  # unweighted, per real token
            logging_output["ar_nll_loss"] = ar_nll.data.sum()
        return total, sample_size, logging_output

    @staticmethod
    def reduce_metrics(logging_outputs) -> None:
        def total(key):
            return sum(float(log.get(key, 0)) for log in logging_outputs)

        sample_size, nsentences = total("sample_size"), total("nsentences")
        metrics.log_scalar("loss", total("loss") / max(sample_size, 1) / math.log(2), sample_size, round=3)
        metrics.log_scalar("nll_loss", total("nll_loss") / max(sample_size, 1) / math.log(2), sample_size, round=3)
        metrics.log_scalar("length_loss", total("length_loss") / max(nsentences, 1) / math.log(2), nsentences, round=3)
        metrics.log_scalar("acc", 100 * total("n_correct") / max(total("n_scored_first_stage"), 1), round=2)
        metrics.log_scalar("mask_acc", 100 * total("n_masked_correct") / max(total("n_masked"), 1), round=2)
        if any("ar_nll_loss" in log for log in logging_outputs):
            ntokens = total("ntokens")
            metrics.log_scalar("ar_nll_loss", total("ar_nll_loss") / max(ntokens, 1) / math.log(2), ntokens, round=3)

    @staticmethod
    def logging_outputs_can_be_summed() -> bool:
        return True
