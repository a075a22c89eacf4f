"""Rejecters and replacement for iterative refinement, as pure functions.

After each decoder pass every position holds a fresh prediction; a rejecter chooses which predictions not to
keep, and a replacement scheme says what the rejected positions hold in the next pass's input. PaDIR (Li et
al., ICML 2024) keeps everything ("passthrough") and re-masks stutters; Mask-Predict (Ghazvininejad et al.,
2019) rejects the least confident tokens on a linear schedule.

Shapes: N candidates, T target length, V vocabulary. ``editable`` (N x T bool) marks positions the decoder may
change: the real tokens, not EOS and not padding. Every rejecter returns an N x T bool mask that is False outside it.
"""

import torch

from fairseq_gmlm.errors import UsageError

REJECTERS = ("passthrough", "linear", "bottom-k", "bottom-fraction")
REPLACEMENTS = ("previous", "initial", "logits-sum")


def predictable(scores: torch.Tensor, never_predicted) -> torch.Tensor:
    """A copy of ``scores`` (... x V) with the ids in ``never_predicted`` (pad, bos, eos, ``<mask>``, ``<length>``:
    ``Vocabulary.never_predicted``) at -inf, so that neither an argmax nor sampling can choose them."""
    ids = torch.as_tensor(never_predicted, dtype=torch.long, device=scores.device)
    return scores.index_fill(-1, ids, float("-inf"))


def reject_lowest(scores: torch.Tensor, editable: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
    """Reject the ``count[n]`` lowest-scoring editable positions of each row (count: N, long)."""
    ranked = scores.masked_fill(~editable, float("inf")).argsort(dim=1)  # N x T, lowest first
    rank = torch.empty_like(ranked).scatter_(1, ranked, torch.arange(scores.size(1), device=scores.device).expand_as(ranked))
    return (rank < count[:, None]) & editable


def linear_schedule_count(num_editable: torch.Tensor, step: int, max_step: int) -> torch.Tensor:
    """Mask-Predict's schedule: after pass ``step`` (0-based) of ``max_step`` + 1 passes, re-mask
    floor(L * (max_step - step) / (max_step + 1)) tokens, so nothing is rejected after the last pass."""
    passes = max_step + 1
    return (num_editable * (passes - step - 1)) // passes


def reject(
    kind: str,
    scores: torch.Tensor,
    editable: torch.Tensor,
    step: int,
    max_step: int,
    k: int = 1,
    fraction: float = 0.1,
) -> torch.Tensor:
    """Dispatch on the rejecter name (one of REJECTERS)."""
    if kind == "passthrough":
        return torch.zeros_like(editable)
    num_editable = editable.sum(1)  # N
    if kind == "linear":
        count = linear_schedule_count(num_editable, step, max_step)
    elif kind == "bottom-k":
        count = torch.full_like(num_editable, k)
    elif kind == "bottom-fraction":
        count = (num_editable.float() * fraction).floor().long()
    else:
        raise UsageError(f"unknown --rejecter {kind!r}; choose one of {', '.join(REJECTERS)}")
    return reject_lowest(scores, editable, count)


def stutter(tokens: torch.Tensor, editable: torch.Tensor) -> torch.Tensor:
    """Positions whose token equals its left neighbour's (the second and later copies of a repeat)."""
    repeat = torch.zeros_like(editable)
    repeat[:, 1:] = tokens[:, 1:].eq(tokens[:, :-1])
    return repeat & editable


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
    if kind == "previous":
        fill = previous
    elif kind == "initial":
        fill = initial
    elif kind == "logits-sum":
        if summed_log_probs is None or never_predicted is None:
            # a caller bug, not wrong use: refine_step always passes both
            raise ValueError("replace('logits-sum', ...) needs summed_log_probs and never_predicted")
        fill = predictable(summed_log_probs, never_predicted).argmax(-1)  # N x T
    else:
        raise UsageError(f"unknown --replacement {kind!r}; choose one of {', '.join(REPLACEMENTS)}")
    return torch.where(rejected, fill, predicted)


def candidate_scores(
    token_log_probs: torch.Tensor, real: torch.Tensor, brevity_alpha: float = 0.0, length_log_probs=None
) -> torch.Tensor:
    """Score N candidates from their per-position log-probabilities (N x T) over real positions only
    (words and EOS, not padding): the summed log-probability, plus the length model's log-probability of
    the candidate's length (N) where given, divided by the length, or with ``brevity_alpha`` > 0 by
    ((5 + length) / 6) ** alpha (Wu et al., 2016).

    Counting the length model in keeps a confident but wrong-length candidate from winning a length beam.
    """
    total = token_log_probs.masked_fill(~real, 0.0).sum(1)  # N
    if length_log_probs is not None:
        total = total + length_log_probs
    length = real.sum(1).to(total.dtype)  # N
    if brevity_alpha > 0:
        return total / ((5.0 + length) / 6.0) ** brevity_alpha
    return total / length
