"""Target-length prediction from a ``<length>`` token prepended to the source (PaDIR, Li et al., ICML 2024).

The encoder output at the ``<length>`` position is scored against a learned table with one row per length
class; the class of a target is its length including EOS, so classes run from 1 to ``max_target_positions``
(row 0 exists only to keep the index equal to the length and is never predicted).
"""

import torch
from torch import nn

MIN_LENGTH = 2  # one word plus EOS: an empty translation is never proposed


class LengthHead(nn.Module):
    def __init__(self, d_model: int, max_target_positions: int):
        super().__init__()
        self.max_length = max_target_positions
        self.length_embedding = nn.Embedding(max_target_positions + 1, d_model)
        nn.init.normal_(self.length_embedding.weight, std=d_model**-0.5)

    def forward(self, length_state: torch.Tensor) -> torch.Tensor:
        """length_state: B x C, the encoder output at <length>. Returns B x (max_length + 1) logits."""
        return length_state @ self.length_embedding.weight.t()


def top_lengths(length_log_probs: torch.Tensor, k: int, max_length) -> torch.Tensor:
    """The k most likely lengths per row (B x k, best first) within [MIN_LENGTH, max_length], where
    ``max_length`` is an int or a B tensor. Rows with fewer than k allowed lengths repeat their best one."""
    classes = torch.arange(length_log_probs.size(-1), device=length_log_probs.device)[None, :]  # 1 x L
    max_length = torch.as_tensor(max_length, device=classes.device).clamp(min=MIN_LENGTH).reshape(-1, 1)
    allowed = (classes >= MIN_LENGTH) & (classes <= max_length)  # B|1 x L
    scores = length_log_probs.masked_fill(~allowed, float("-inf"))
    best = scores.topk(min(k, scores.size(-1)), dim=-1)
    return torch.where(best.values.isfinite(), best.indices, best.indices[:, :1])


def expected_lengths(length_log_probs: torch.Tensor, max_length) -> torch.Tensor:
    """The mean of each row's length distribution, restricted to [MIN_LENGTH, max_length] and renormalised,
    rounded to the nearest length: B. ``max_length`` is an int or a B tensor, as in ``top_lengths``.

    Where the length model is unsure, its distribution is wide and right-skewed (short sentences are the most
    frequent in any corpus), and its most likely length falls well below the typical one; the mean does not."""
    classes = torch.arange(length_log_probs.size(-1), device=length_log_probs.device)[None, :]  # 1 x L
    max_length = torch.as_tensor(max_length, device=classes.device).clamp(min=MIN_LENGTH).reshape(-1, 1)
    allowed = (classes >= MIN_LENGTH) & (classes <= max_length)  # B|1 x L
    probs = length_log_probs.float().masked_fill(~allowed, float("-inf")).softmax(-1)  # B x L
    return (probs * classes).sum(-1).round().long()
