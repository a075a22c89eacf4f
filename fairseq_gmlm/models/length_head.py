"""Target-length prediction from a ``<length>`` token prepended to the source (PaDIR, Li et al., ICML 2024).

The encoder output at the ``<length>`` position is scored against a learned table with one row per class.
By default (PaDIR's) a class is a target length including EOS, so classes run from 1 to ``max_target_positions``
(row 0 exists only to keep the index equal to the length and is never predicted). With offsets (the model's
``--pred-length-offset``, fairseq's NAT flag) a class is the target length minus the source length: the head
learns how much longer or shorter a translation runs, and the source length, which a ``<length>`` state seen
through bucketed relative positions knows only roughly, enters exactly. Either way the head returns logits over
absolute lengths, so the loss and the decoder's length candidates do not depend on the choice.
"""

from typing import Optional

import torch
from torch import nn

MIN_LENGTH = 2  # one word plus EOS: an empty translation is never proposed


def offset_rows(source_lengths: torch.Tensor, max_target_positions: int, max_source_positions: int) -> torch.Tensor:
    """B x (max_target_positions + 1): the offset table's row for each absolute length 0 ... max_target_positions
    of each sentence, whose source holds SOURCE_LENGTHS (B) tokens with EOS; row ``max_source_positions`` is
    offset 0. Sources longer than ``max_source_positions`` read as that long."""
    lengths = torch.arange(max_target_positions + 1, device=source_lengths.device)[None, :]  # 1 x L
    source = source_lengths.clamp(max=max_source_positions)[:, None]  # B x 1
    return lengths - source + max_source_positions  # B x L, in [0, max_source + max_target]


class LengthHead(nn.Module):
    def __init__(self, d_model: int, max_target_positions: int, max_source_positions: Optional[int] = None):
        """``max_source_positions``: None for absolute length classes; else the head predicts offsets from the
        source length, one row for each of -max_source_positions ... +max_target_positions."""
        super().__init__()
        self.max_length = max_target_positions
        self.max_source = max_source_positions
        offsets = 0 if max_source_positions is None else max_source_positions  # rows for negative offsets
        self.length_embedding = nn.Embedding(offsets + max_target_positions + 1, d_model)
        nn.init.normal_(self.length_embedding.weight, std=d_model**-0.5)

    @property
    def predicts_offset(self) -> bool:
        return self.max_source is not None

    def forward(self, length_state: torch.Tensor, source_lengths: Optional[torch.Tensor] = None) -> torch.Tensor:
        """length_state: B x C, the encoder output at <length>; source_lengths: B source tokens with EOS (needed
        for offsets). Returns B x (max_length + 1) logits, class L for a target of L tokens with EOS."""
        logits = length_state @ self.length_embedding.weight.t()  # B x rows
        if not self.predicts_offset:
            return logits
        if source_lengths is None:
            raise ValueError("a length head of offsets (--pred-length-offset) needs the source lengths")
        return logits.gather(1, offset_rows(source_lengths, self.max_length, self.max_source))  # B x (max_length + 1)


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
