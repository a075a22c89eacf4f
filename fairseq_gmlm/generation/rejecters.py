"""Rejecters and replacement for iterative refinement, as pure functions.

After each decoder pass every position holds a fresh prediction; a rejecter chooses which predictions not to
keep, and a replacement scheme says what the rejected positions hold in the next pass's input. PaDIR (Li et
al., ICML 2024) keeps everything ("passthrough") and re-masks stutters; Mask-Predict (Ghazvininejad et al.,
2019) rejects the least confident tokens on a linear schedule, MaskGIT (Chang et al., 2022) on a cosine one;
Fast-dLLM (Wu et al., 2025) keeps every prediction above a confidence threshold, so the number of passes adapts
per sentence; "random" commits open positions in a random order (the sampler the theory assumes: unbiased where
confidence ordering is not).

Shapes: N candidates, T target length, V vocabulary. ``editable`` (N x T bool) marks positions the decoder may
change: the real tokens, not EOS and not padding. ``opened`` (N x T bool) marks the editable positions that
still hold their initial token in the pass's input (all of them in the first pass). Every rejecter returns an
N x T bool mask that is False outside ``editable``.
"""

import math
from typing import NamedTuple

import torch

from fairseq_gmlm.errors import UsageError


def predictable(scores: torch.Tensor, never_predicted) -> torch.Tensor:
    """A copy of ``scores`` (... x V) with the ids in ``never_predicted`` (pad, bos, eos, ``<mask>``, ``<length>``:
    ``Vocabulary.never_predicted``) at -inf, so that neither an argmax nor sampling can choose them."""
    ids = torch.as_tensor(never_predicted, dtype=torch.long, device=scores.device)
    return scores.index_fill(-1, ids, float("-inf"))


def reject_lowest(scores: torch.Tensor, editable: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
    """Reject the ``count[n]`` lowest-scoring editable positions of each row (count: N, long)."""
    # N x T, lowest first; ties (--stutter-remask first's copies all rank at -inf) in position order, whatever the
    # canvas's width, so that a sentence decodes alike alone and in a batch
    ranked = scores.masked_fill(~editable, float("inf")).argsort(dim=1, stable=True)
    rank = torch.empty_like(ranked).scatter_(1, ranked, torch.arange(scores.size(1), device=scores.device).expand_as(ranked))
    return (rank < count[:, None]) & editable


def linear_schedule_count(num_editable: torch.Tensor, step: int, max_step: int) -> torch.Tensor:
    """Mask-Predict's schedule: after pass ``step`` (0-based) of ``max_step`` + 1 passes, re-mask
    floor(L * (max_step - step) / (max_step + 1)) tokens, so nothing is rejected after the last pass."""
    passes = max_step + 1
    return (num_editable * (passes - step - 1)) // passes


def cosine_schedule_count(num_editable: torch.Tensor, step: int, max_step: int) -> torch.Tensor:
    """MaskGIT's schedule (Chang et al., CVPR 2022): after pass ``step`` (0-based) of ``max_step`` + 1 passes,
    re-mask floor(L * cos(pi/2 * (step + 1) / (max_step + 1))) tokens: more than the linear schedule early on
    (5 passes: 95%, 81%, 59%, 31% of L against 80%, 60%, 40%, 20%), nothing after the last pass. On the recipe's
    model it lost to the linear one (docs/decoding.md, "The defaults on the recipe's model")."""
    share = math.cos(math.pi / 2 * (step + 1) / (max_step + 1))
    return (num_editable.double() * share).floor().long() if step < max_step else torch.zeros_like(num_editable)


def _passthrough(scores, editable, opened, step, max_step, **unused) -> torch.Tensor:
    return torch.zeros_like(editable)


def scheduled(schedule_count):
    """The rejecter that re-masks the ``schedule_count(L, step, max_step)`` least confident editable words of each
    row (L: its editable words): Mask-Predict's with the linear schedule, MaskGIT's with the cosine one."""
    def rejecter(scores, editable, opened, step, max_step, **unused) -> torch.Tensor:
        return reject_lowest(scores, editable, schedule_count(editable.sum(1), step, max_step))
    return rejecter


def _bottom_k(scores, editable, opened, step, max_step, k, **unused) -> torch.Tensor:
    return reject_lowest(scores, editable, torch.full_like(editable.sum(1), k))


def _bottom_fraction(scores, editable, opened, step, max_step, fraction, **unused) -> torch.Tensor:
    return reject_lowest(scores, editable, (editable.sum(1).float() * fraction).floor().long())


def _random(scores, editable, opened, step, max_step, **unused) -> torch.Tensor:
    """Random-order unmasking (MaskGIT with a random order; ancestral sampling in a random order): commit a
    uniformly random subset of the positions still open, as many as the linear schedule asks, and never revisit
    a committed one. With one position per pass and exact conditionals, sampling then draws from the joint."""
    count = linear_schedule_count(editable.sum(1), step, max_step)  # N; never more than the open positions
    return reject_lowest(torch.rand(scores.shape, device=scores.device), opened, count)


def confidence_count(scores, editable, opened, step: int, max_step: int, threshold: float) -> torch.Tensor:
    """Fast-dLLM's threshold rule: reject the editable predictions whose probability is below ``threshold``,
    but at most one fewer than the input held open (N), so at least the single most confident open position is
    kept, every pass closes one more, and a candidate ends when its input has none left. Nothing is rejected
    after the last allowed pass."""
    below = ((scores < math.log(threshold)) & editable).sum(1)  # N
    count = torch.minimum(below, (opened.sum(1) - 1).clamp(min=0))
    return count if step < max_step else torch.zeros_like(count)


def _confidence(scores, editable, opened, step, max_step, threshold, **unused) -> torch.Tensor:
    return reject_lowest(scores, editable, confidence_count(scores, editable, opened, step, max_step, threshold))


# --rejecter NAME -> function(scores, editable, opened, step, max_step, k=, fraction=, threshold=) -> N x T bool
REJECTERS = {
    "passthrough": _passthrough,
    "linear": scheduled(linear_schedule_count),
    "cosine": scheduled(cosine_schedule_count),
    "bottom-k": _bottom_k,
    "bottom-fraction": _bottom_fraction,
    "confidence": _confidence,
    "random": _random,
}


# --repredict: which positions take a pass's new prediction. "all" (PaDIR's): every word, so a word kept from an
# earlier pass can change; "open" (Mask-Predict's): only the positions the pass's input held open, the others
# keeping their word and the log-probability it was predicted with.
REPREDICTIONS = ("all", "open")

# --stutter-remask: what happens to a word equal to its left neighbour (a "stutter", the typical error of parallel
# decoding). "first" (the default since 2026-12-06): after each pass the less confident copy takes its next most
# probable word and is the first the schedule re-masks, within the schedule's count (measured: docs/decoding.md,
# "Repeated words: the less confident copy first"); "on" (PaDIR's): every second copy is rejected on top of the
# schedule, and repeats left after the last pass are dropped from the output; "off": nothing.
STUTTER_RULES = ("first", "on", "off")


class Rejection(NamedTuple):
    """How a pass's predictions become the next pass's input: which positions are predicted anew (a name of
    REPREDICTIONS), the rejecter (a key of REJECTERS) with its settings, the stutter rule (a name of
    STUTTER_RULES), and the replacement (a key of REPLACEMENTS). Decoding takes them from translation_gmlm's
    flags (--rejecter, ...), unrolled training from gmlm_loss's (--train-rejecter, ...; it re-predicts every
    position)."""

    rejecter: str
    reject_k: int
    reject_fraction: float
    reject_threshold: float
    stutter_remask: str
    replacement: str
    repredict: str = "all"

    def check(self, flag_prefix: str = "--") -> "Rejection":
        """Return self, or raise a UsageError naming the flag (``flag_prefix`` + its name) to change."""
        def flag(name):
            return flag_prefix + name.replace("_", "-")

        for name, choices in (("rejecter", REJECTERS), ("replacement", REPLACEMENTS), ("repredict", REPREDICTIONS),
                              ("stutter_remask", STUTTER_RULES)):
            if getattr(self, name) not in choices:
                raise UsageError(f"unknown {flag(name)} {getattr(self, name)!r}; choose one of {', '.join(choices)}")
        if self.reject_k < 0:
            raise UsageError(f"{flag('reject_k')} must be >= 0, got {self.reject_k}")
        if not 0.0 <= self.reject_fraction <= 1.0:
            raise UsageError(f"{flag('reject_fraction')} must be in [0, 1], got {self.reject_fraction}")
        if not 0.0 < self.reject_threshold <= 1.0:
            raise UsageError(f"{flag('reject_threshold')} must be in (0, 1], got {self.reject_threshold}")
        if self.rejecter in ("confidence", "random") and self.replacement != "initial":
            raise UsageError(f"{flag('rejecter')} {self.rejecter} re-opens positions it rejects: use "
                             f"{flag('replacement')} initial (got {self.replacement!r})")
        if self.repredict == "open" and self.replacement != "initial":
            raise UsageError(f"{flag('repredict')} open predicts only the positions that hold their initial token, "
                             f"so a rejected word must go back to it: use {flag('replacement')} initial (got "
                             f"{self.replacement!r})")
        return self


def stutter_rule(value) -> str:
    """--stutter-remask's value as a string: a bool from Python and JSON means 'on' or 'off'. Rejection.check
    says, naming the flag, when it is not a name of STUTTER_RULES."""
    return ("on" if value else "off") if isinstance(value, bool) else str(value)


def reject(kind: str, scores: torch.Tensor, editable: torch.Tensor, step: int, max_step: int,
           opened: torch.Tensor = None, **settings) -> torch.Tensor:
    """Dispatch on the rejecter name (a key of REJECTERS). ``opened`` defaults to every editable position;
    ``settings`` are the rejecter's own: k (bottom-k), fraction (bottom-fraction), threshold (confidence)."""
    if kind not in REJECTERS:
        raise UsageError(f"unknown --rejecter {kind!r}; choose one of {', '.join(REJECTERS)}")
    opened = editable if opened is None else opened & editable
    return REJECTERS[kind](scores, editable, opened, step, max_step, **settings)


def stutter(tokens: torch.Tensor, editable: torch.Tensor) -> torch.Tensor:
    """Positions whose token equals its left neighbour's (the second and later copies of a repeat)."""
    repeat = torch.zeros_like(editable)
    repeat[:, 1:] = tokens[:, 1:].eq(tokens[:, :-1])
    return repeat & editable


# Scores closer than this are a tie in less_confident_copies: the two copies of a word often score nearly alike, and
# the order of a near-tie is float rounding, which changes with the batch a sentence is decoded in.
TIE = 1e-4


def less_confident_copies(tokens: torch.Tensor, scores: torch.Tensor, editable: torch.Tensor) -> torch.Tensor:
    """N x T bool: of each two neighbouring editable positions that hold the same token, the one with the lower
    score (the right one on a tie, within TIE); in a run of three or more, every position that loses to a
    neighbour."""
    pair = tokens[:, 1:].eq(tokens[:, :-1]) & editable[:, 1:] & editable[:, :-1]  # N x T-1: t + 1 repeats t
    right_loses = pair & (scores[:, 1:] <= scores[:, :-1] + TIE)  # N x T-1
    copies = torch.zeros_like(editable)
    copies[:, 1:] = right_loses
    copies[:, :-1] |= pair ^ right_loses
    return copies


def next_best(log_probs: torch.Tensor, tokens: torch.Tensor, positions: torch.Tensor, never_predicted) -> torch.Tensor:
    """A copy of ``tokens`` (N x T) in which each of ``positions`` (N x T bool) holds its most probable predictable
    word under ``log_probs`` (N x T x V) other than the one it holds."""
    rows = predictable(log_probs[positions], never_predicted)  # P x V
    rows = rows.scatter(-1, tokens[positions].unsqueeze(-1), float("-inf"))
    return tokens.masked_scatter(positions, rows.argmax(-1))


def _previous(predicted, previous, initial, summed_log_probs, never_predicted) -> torch.Tensor:
    return previous


def _initial(predicted, previous, initial, summed_log_probs, never_predicted) -> torch.Tensor:
    return initial


def _logits_sum(predicted, previous, initial, summed_log_probs, never_predicted) -> torch.Tensor:
    if summed_log_probs is None or never_predicted is None:
        # a caller bug, not wrong use: refine_step always passes both
        raise ValueError("replace('logits-sum', ...) needs summed_log_probs and never_predicted")
    return predictable(summed_log_probs, never_predicted).argmax(-1)  # N x T


# --replacement NAME -> function(predicted, previous, initial, summed_log_probs, never_predicted) -> N x T fill
REPLACEMENTS = {"previous": _previous, "initial": _initial, "logits-sum": _logits_sum}


def replace(
    kind: str,
    predicted: torch.Tensor,
    rejected: torch.Tensor,
    previous: torch.Tensor,
    initial: torch.Tensor,
    summed_log_probs: torch.Tensor = None,
    never_predicted=None,
) -> torch.Tensor:
    """The next decoder input (N x T): ``predicted`` where kept, the replacement where rejected.

    previous: the input of the pass that made ``predicted``; initial: the first input (with ``<mask>``
    initialisation this is true re-masking); logits-sum: the argmax of ``summed_log_probs`` (N x T x V, the
    log-probabilities summed over passes) among the predictable ids, never one of ``never_predicted``.
    """
    if kind not in REPLACEMENTS:
        raise UsageError(f"unknown --replacement {kind!r}; choose one of {', '.join(REPLACEMENTS)}")
    fill = REPLACEMENTS[kind](predicted, previous, initial, summed_log_probs, never_predicted)
    return torch.where(rejected, fill, predicted)


CANDIDATE_SCORES = ("mean", "sum")


def candidate_scores(
    token_log_probs: torch.Tensor, real: torch.Tensor, length_log_probs, kind: str, brevity_penalty: float
) -> torch.Tensor:
    """Score N candidates from their per-position log-probabilities (N x T) over real positions only
    (words and EOS, not padding).

    mean (ours): the summed log-probability plus the length model's log-probability of the candidate's length
    (N) where given, divided by the length. Counting the length model in keeps a confident but wrong-length
    candidate from winning a length beam. sum (PaDIR's): the plain summed log-probability of the last pass.
    Either, with ``brevity_penalty`` alpha > 0, is instead divided by ((5 + length) / 6) ** alpha (Wu et al., 2016).
    """
    if kind not in CANDIDATE_SCORES:
        raise UsageError(f"unknown --candidate-score {kind!r}; choose one of {', '.join(CANDIDATE_SCORES)}")
    total = token_log_probs.masked_fill(~real, 0.0).sum(1)  # N
    if length_log_probs is not None and kind == "mean":
        total = total + length_log_probs
    length = real.sum(1).to(total.dtype)  # N
    if brevity_penalty > 0:
        return total / ((5.0 + length) / 6.0) ** brevity_penalty
    return total / length if kind == "mean" else total


def best_candidates(scores: torch.Tensor, per_sentence: int) -> torch.Tensor:
    """Index (into N = B x per_sentence, sentence-major) of each sentence's highest-scoring candidate: B."""
    offsets = torch.arange(0, scores.numel(), per_sentence, device=scores.device)  # B
    return scores.view(-1, per_sentence).argmax(1) + offsets
