"""Target corruption for GMLM training, as pure deterministic functions.

Li et al., "Promises and Pitfalls of Generative Masked Language Modeling" (ICML 2024), training section: per
example, a masking ratio m (fixed, or drawn from U(0, 1)); each target token is noised independently with
probability m, EOS and padding never. A noised token becomes ``<mask>`` with probability 1 - r - c, a uniformly
random regular token with probability r, or stays correct with probability c; r and c are fixed or drawn from
U(0, 0.5) per example. Beyond PaDIR, a share s of the noised tokens can instead become a copy of a neighbouring
reference word (``neighbour_prob``): the input then holds a stutter ("the the"), the error refinement most often
leaves in its outputs, for the loss to repair (measured on 2026-12-02: the model stutters more, not less).

Randomness comes from a counter-based hash of (seed, update, example id, position) rather than a stateful
generator, so an example is corrupted the same way whatever batch or worker it lands in: one process with a
whole batch and two processes with half each see identical inputs.

Shapes: B batch, T target length.
"""

from typing import NamedTuple, Optional, Tuple, Union

import torch

from fairseq_gmlm.errors import UsageError

_MASK32 = 0xFFFFFFFF
STREAMS = {"ratio": 1, "random_prob": 2, "keep_prob": 3, "noise": 4, "fate": 5, "random_token": 6, "glance": 7,
           "neighbour": 8, "predicted": 9}


def hash32(x: torch.Tensor) -> torch.Tensor:
    """A 32-bit integer mix (int64 tensor in, values in [0, 2^32) out); products stay below 2^59."""
    x = x & _MASK32
    x = (((x >> 16) ^ x) * 0x45D9F3B) & _MASK32
    x = (((x >> 16) ^ x) * 0x45D9F3B) & _MASK32
    return (x >> 16) ^ x


def example_keys(ids: torch.Tensor, seed: int, update: int) -> torch.Tensor:
    """One key per example (B, int64) from its dataset id, the run's seed and the update number."""
    base = hash32(torch.tensor(seed, dtype=torch.long) * 1000003 + update)
    return hash32(ids.long() ^ base)


def uniform(keys: torch.Tensor, stream: str, positions: Optional[int] = None) -> torch.Tensor:
    """Uniforms in [0, 1): B x 1 per example, or B x T per position when ``positions`` is given."""
    keyed = hash32(keys ^ (STREAMS[stream] * 0x9E3779B1))[:, None]  # B x 1
    if positions is not None:
        keyed = hash32(keyed ^ hash32(torch.arange(positions, device=keys.device) + 0x51ED27)[None, :])  # B x T
    # float32 rounds the top 128 of the 2^32 values up to 1.0: keep them just below it
    return keyed.double().div(2.0**32).float().clamp(max=1.0 - 2.0**-24)


class Corruption(NamedTuple):
    tokens: torch.Tensor  # B x T decoder input
    noised: torch.Tensor  # B x T bool: positions chosen for noise (whatever they became)
    masked: torch.Tensor  # B x T bool: positions that became <mask>
    ratio: Optional[torch.Tensor] = None  # B x 1: each example's noise ratio (glancing: its share of hidden words)


Setting = Union[None, float, Tuple[float, float]]  # drawn from U(0, high) / fixed / drawn from U(low, high)


def per_example(value: Setting, high: float, keys: torch.Tensor, stream: str) -> torch.Tensor:
    """A fixed value for every example, a draw from U(0, high) when ``value`` is None, or from U(low, high) when
    it is a (low, high) pair. Returns B x 1."""
    if isinstance(value, tuple):
        low, top = value
        return low + uniform(keys, stream) * (top - low)
    if value is not None:
        return torch.full((keys.size(0), 1), float(value), device=keys.device)
    return uniform(keys, stream) * high


def neighbour_words(target: torch.Tensor, words: torch.Tensor,
                    keys: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """For every position of TARGET (B x T), the reference word on its left or its right, the side drawn per
    position, the other side where one is not a word (WORDS, B x T bool). Returns (B x T words, B x T bool: a
    neighbour exists; False for a one-word sentence and outside the words)."""
    no_word = torch.zeros_like(words[:, :1])
    left, left_ok = target.roll(1, 1), torch.cat([no_word, words[:, :-1]], 1) & words  # B x T
    right, right_ok = target.roll(-1, 1), torch.cat([words[:, 1:], no_word], 1) & words  # B x T
    go_left = uniform(keys, "neighbour", target.size(1)) < 0.5  # B x T
    use_left = left_ok & (go_left | ~right_ok)
    return torch.where(use_left, left, right), use_left | right_ok


def corrupt(
    target: torch.Tensor,
    keys: torch.Tensor,
    *,
    pad: int,
    eos: int,
    mask: int,
    random_low: int,
    random_high: int,
    mask_ratio: Setting = None,
    random_prob: Optional[float] = None,
    keep_prob: Optional[float] = None,
    neighbour_prob: float = 0.0,
) -> Corruption:
    """Corrupt a right-padded B x T target; ``keys`` (B) come from :func:`example_keys`.

    Random replacements are drawn from ids [random_low, random_high), the regular vocabulary. ``None`` for a
    ratio or probability draws it per example: U(0, 1) for the masking ratio, U(0, 0.5) for the other two; a (low, high) masking ratio draws
    it from U(low, high). ``neighbour_prob`` (fixed) is the share of noised tokens that become a copy of a
    neighbouring reference word (:func:`neighbour_words`); in a one-word sentence they are masked instead.
    """
    ratio = per_example(mask_ratio, 1.0, keys, "ratio")  # B x 1
    random_p = per_example(random_prob, 0.5, keys, "random_prob")  # B x 1
    keep_p = per_example(keep_prob, 0.5, keys, "keep_prob")  # B x 1
    if bool(((random_p + keep_p + neighbour_prob) > 1.0).any()):
        raise UsageError("--random-token-prob plus --keep-prob plus --neighbour-copy-prob must not exceed 1")

    length = target.size(1)
    can_noise = target.ne(pad) & target.ne(eos)  # B x T
    noised = (uniform(keys, "noise", length) < ratio) & can_noise
    fate = uniform(keys, "fate", length)  # one uniform decides what a noised token becomes
    # fate bands: [0, r) random word, [r, r + c) kept, [r + c, r + c + s) neighbour's copy, the rest <mask>
    randomised = noised & (fate < random_p)
    copied = noised & (fate >= random_p + keep_p) & (fate < random_p + keep_p + neighbour_prob)
    masked = noised & (fate >= random_p + keep_p + neighbour_prob)
    random_tokens = random_low + (uniform(keys, "random_token", length) * (random_high - random_low)).long()

    tokens = target.masked_fill(masked, mask)
    tokens = torch.where(randomised, random_tokens.clamp(max=random_high - 1), tokens)
    if neighbour_prob > 0:  # off by default: no work per batch; the bands above are disjoint, so order is free
        neighbour, has_neighbour = neighbour_words(target, can_noise, keys)  # B x T each
        alone = copied & ~has_neighbour  # a one-word sentence's copy is masked instead
        tokens = torch.where(copied & has_neighbour, neighbour, tokens).masked_fill(alone, mask)
        masked = masked | alone
    return Corruption(tokens=tokens, noised=noised, masked=masked, ratio=ratio)


def with_predictions(
    corruption: Corruption, predicted: torch.Tensor, keys: torch.Tensor, *, prob: float
) -> Corruption:
    """CORRUPTION with a share PROB of its noised positions (drawn per position, whatever they became) holding
    PREDICTED instead: the model's own words from a first pass without gradient (B x T, see
    ``TranslationGMLMTask.first_pass``). The input then holds the errors refinement meets in decoding, plausible
    wrong words and repeats, rather than uniformly random ones, for the loss to correct (SMART: Ghazvininejad et
    al., 2020; CMLMC: Huang et al., ICLR 2022). The chosen positions stay noised (scored) and are no longer masked.
    """
    chosen = corruption.noised & (uniform(keys, "predicted", predicted.size(1)) < prob)  # B x T
    return corruption._replace(tokens=torch.where(chosen, predicted, corruption.tokens),
                               masked=corruption.masked & ~chosen)


def fully_masked(target: torch.Tensor, *, pad: int, eos: int, mask: int) -> torch.Tensor:
    """B x T: every word of the right-padded TARGET replaced by ``<mask>``; EOS and padding kept."""
    return target.masked_fill(target.ne(pad) & target.ne(eos), mask)


def glance(
    target: torch.Tensor, predicted: torch.Tensor, keys: torch.Tensor, *, ratio: float, pad: int, eos: int, mask: int
) -> Corruption:
    """Glancing sampling (GLAT: Qian et al., "Glancing Transformer for Non-Autoregressive Neural Machine
    Translation", ACL 2021): reveal floor(RATIO x the Hamming distance between PREDICTED, a first parallel pass
    from the fully masked target, and TARGET) reference words at uniformly drawn positions; mask the rest.

    target, predicted: B x T; keys (B) from :func:`example_keys`. The worse the first pass, the more of the
    reference the model sees, so training starts easy and hardens as the model improves. The masked words
    are the noised (and scored) ones.
    """
    words = target.ne(pad) & target.ne(eos)  # B x T
    wrong = (predicted.ne(target) & words).sum(1)  # B
    reveal = (ratio * wrong.double()).floor().long()  # B
    draw = uniform(keys, "glance", target.size(1)).masked_fill(~words, 2.0)  # B x T, non-words drawn last
    rank = draw.argsort(1).argsort(1)  # B x T: 0 for the lowest draw
    hidden = words & (rank >= reveal[:, None])
    share = hidden.sum(1, keepdim=True).double() / words.sum(1, keepdim=True).clamp(min=1)  # B x 1
    return Corruption(tokens=target.masked_fill(hidden, mask), noised=hidden, masked=hidden, ratio=share.float())
