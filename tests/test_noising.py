import pytest
import torch

from fairseq_gmlm.errors import UsageError
from fairseq_gmlm.noising import STREAMS, corrupt, example_keys, fully_masked, hash32, neighbour_words, uniform
from fairseq_gmlm.tasks.translation_gmlm import parse_ratio_range

PAD, EOS, MASK, LOW, HIGH = 1, 2, 99, 4, 90


def batch(n=4000, length=12, seed=0):
    generator = torch.Generator().manual_seed(seed)
    target = torch.randint(LOW, HIGH, (n, length), generator=generator)
    lengths = torch.randint(3, length + 1, (n,), generator=generator)
    positions = torch.arange(length)[None, :]
    target = torch.where(positions < lengths[:, None] - 1, target, torch.full_like(target, PAD))
    target = target.scatter(1, lengths[:, None] - 1, EOS)
    return target


def run(target, ids=None, update=0, **kw):
    ids = torch.arange(target.size(0)) if ids is None else ids
    return corrupt(target, example_keys(ids, seed=1, update=update), pad=PAD, eos=EOS, mask=MASK,
                   random_low=LOW, random_high=HIGH, **kw)


def test_eos_and_padding_are_never_noised():
    target = batch()
    c = run(target, mask_ratio=1.0, random_prob=0.3, keep_prob=0.2)
    special = target.eq(EOS) | target.eq(PAD)
    assert not c.noised[special].any()
    assert torch.equal(c.tokens[special], target[special])


def noised_share(c, target):
    words = target.ne(PAD) & target.ne(EOS)
    return c.noised.sum(1).float() / words.sum(1).float()


def test_uniform_masking_ratio_is_drawn_per_example():
    target = batch(length=60)
    uniform = noised_share(run(target, mask_ratio=None, random_prob=0.0, keep_prob=0.0), target)
    fixed = noised_share(run(target, mask_ratio=0.5, random_prob=0.0, keep_prob=0.0), target)
    assert abs(uniform.mean().item() - 0.5) < 0.02 and abs(fixed.mean().item() - 0.5) < 0.02
    # U(0, 1) has std 0.289; a fixed ratio leaves only the binomial spread (about 0.1 at these lengths)
    assert 0.26 < uniform.std().item() < 0.33
    assert fixed.std().item() < 0.15


def test_a_masking_ratio_range_draws_each_examples_ratio_inside_it():
    target = batch(length=60)
    c = run(target, mask_ratio=(0.5, 1.0), random_prob=0.0, keep_prob=0.0)
    assert c.ratio.min().item() >= 0.5 and c.ratio.max().item() < 1.0
    assert abs(c.ratio.mean().item() - 0.75) < 0.03 and 0.12 < c.ratio.std().item() < 0.17  # U(0.5, 1): std 0.144
    shares = noised_share(c, target)
    assert abs(shares.mean().item() - 0.75) < 0.03
    assert torch.equal(run(target, mask_ratio=(0.3, 0.3), random_prob=0.0, keep_prob=0.0).noised,
                       run(target, mask_ratio=0.3, random_prob=0.0, keep_prob=0.0).noised)


def test_mask_ratio_flag_reads_a_number_uniform_or_a_range():
    assert parse_ratio_range("--mask-ratio", "0.15") == 0.15
    assert parse_ratio_range("--mask-ratio", "uniform") is None
    assert parse_ratio_range("--mask-ratio", "0.5:1") == (0.5, 1.0)
    for bad in ("0.8:0.2", "0.5:2", "uniform:1", "a:b"):
        with pytest.raises(UsageError, match="--mask-ratio"):
            parse_ratio_range("--mask-ratio", bad)


def test_mask_only_corruption_masks_every_noised_token():
    target = batch()
    c = run(target, mask_ratio=None, random_prob=0.0, keep_prob=0.0)
    assert torch.equal(c.masked, c.noised)
    assert torch.equal(c.tokens.eq(MASK), c.masked)


def test_fixed_probabilities_split_noised_tokens_into_mask_random_and_kept():
    target = batch()
    c = run(target, mask_ratio=0.6, random_prob=0.2, keep_prob=0.3)
    words = target.ne(PAD) & target.ne(EOS)
    assert abs(c.noised.sum().item() / words.sum().item() - 0.6) < 0.01
    noised = c.noised.sum().item()
    assert abs(c.masked.sum().item() / noised - 0.5) < 0.015
    randomised = c.noised & ~c.masked & c.tokens.ne(target)
    # a random draw can hit the original token (1 in 86), so "changed" slightly undercounts the random share
    assert abs(randomised.sum().item() / noised - 0.2 * (1 - 1 / (HIGH - LOW))) < 0.015
    assert c.tokens[randomised].min() >= LOW and c.tokens[randomised].max() < HIGH


def fates(c, target):
    """Per example, the shares of its noised tokens that were masked, randomised (changed) and kept."""
    noised = c.noised.sum(1).float()
    randomised = (c.noised & ~c.masked & c.tokens.ne(target)).sum(1)
    kept = (c.noised & ~c.masked & c.tokens.eq(target)).sum(1)
    return c.masked.sum(1) / noised, randomised / noised, kept / noised


def test_uniform_random_and_keep_probabilities_average_a_quarter_each():
    target = batch()
    c = run(target, mask_ratio=1.0, random_prob=None, keep_prob=None)
    masked, randomised, kept = (share.sum().item() / c.noised.sum().item()
                                for share in (c.masked, c.noised & ~c.masked & c.tokens.ne(target),
                                              c.noised & ~c.masked & c.tokens.eq(target)))
    same = 1 / (HIGH - LOW)  # a random draw that hits the original token counts as kept
    assert abs(masked - 0.5) < 0.02
    assert abs(randomised - 0.25 * (1 - same)) < 0.015
    assert abs(kept - (0.25 + 0.25 * same)) < 0.015


def test_uniform_random_and_keep_probabilities_are_drawn_per_example():
    target = batch(length=60)
    target = target[(target.ne(PAD) & target.ne(EOS)).sum(1) >= 50]  # long examples: little binomial spread
    drawn = fates(run(target, mask_ratio=1.0, random_prob=None, keep_prob=None), target)
    fixed = fates(run(target, mask_ratio=1.0, random_prob=0.25, keep_prob=0.25), target)
    for share_drawn, share_fixed in zip(drawn[1:], fixed[1:]):  # randomised, kept
        # U(0, 0.5) has std 0.144; a fixed probability leaves only the binomial spread (about 0.06 here)
        assert share_drawn.std().item() > 0.13 and share_fixed.std().item() < 0.09
    # the two probabilities are independent draws, not one draw used twice
    assert abs(torch.corrcoef(torch.stack(drawn[1:]))[0, 1].item()) < 0.3


def test_corruption_of_an_example_does_not_depend_on_its_batch():
    target = batch(n=16)
    whole = run(target)
    ids = torch.arange(16)
    half = run(target[8:], ids=ids[8:])
    assert torch.equal(whole.tokens[8:], half.tokens)
    assert not torch.equal(run(target, update=1).tokens, whole.tokens)


def test_noise_stream_is_stable_so_a_repeated_run_corrupts_its_examples_as_before():
    keys = example_keys(torch.tensor([0, 1, 7]), seed=1, update=3)
    assert keys.tolist() == [3313873551, 2080386112, 598765010]
    expected = torch.tensor([[0.874491, 0.823144, 0.828582, 0.606298], [0.604166, 0.737207, 0.508982, 0.319779],
                             [0.971868, 0.213435, 0.028198, 0.010424]])  # B x T draws of the "noise" stream
    torch.testing.assert_close(uniform(keys, "noise", 4), expected, rtol=0, atol=1e-6)
    torch.testing.assert_close(uniform(keys, "ratio"), uniform(keys, "ratio", None))
    assert not torch.allclose(uniform(keys, "fate", 4), uniform(keys, "noise", 4))  # streams are independent


def test_random_replacements_are_spread_over_the_regular_vocabulary_within_each_example():
    target = batch(length=60)
    c = run(target, mask_ratio=1.0, random_prob=1.0, keep_prob=0.0)
    replaced = c.tokens[c.noised]
    counts = torch.bincount(replaced, minlength=HIGH)[LOW:HIGH].float()
    assert replaced.min() >= LOW and replaced.max() < HIGH
    assert counts.min() > 0.7 * counts.mean() and counts.max() < 1.3 * counts.mean()  # about uniform
    longest = c.noised.sum(1).argmax()
    assert c.tokens[longest][c.noised[longest]].unique().numel() > 20  # not one draw per example


def test_random_and_keep_probabilities_over_one_are_refused():
    target = batch(n=4)
    message = "^--random-token-prob plus --keep-prob plus --neighbour-copy-prob must not exceed 1$"
    with pytest.raises(UsageError, match=message):
        run(target, mask_ratio=0.5, random_prob=0.7, keep_prob=0.4)
    with pytest.raises(UsageError, match=message):
        run(target, mask_ratio=0.5, random_prob=0.4, keep_prob=0.4, neighbour_prob=0.3)
    run(target, mask_ratio=0.5, random_prob=0.6, keep_prob=0.4)  # exactly 1 is allowed


def test_a_neighbour_copy_holds_the_reference_word_left_or_right_of_its_position():
    one_word = torch.full((20, 12), PAD)
    one_word[:, 0], one_word[:, 1] = torch.arange(LOW, LOW + 20), EOS
    target = torch.cat([batch(), one_word])
    c = run(target, mask_ratio=1.0, random_prob=0.0, keep_prob=0.0, neighbour_prob=1.0)
    words = target.ne(PAD) & target.ne(EOS)
    alone = words & (words.sum(1, keepdim=True) == 1)  # one-word sentences: no neighbour, so masked
    assert alone.any() and c.tokens[alone].eq(MASK).all() and c.masked[alone].all()
    assert torch.equal(c.tokens[~words], target[~words])  # EOS and padding untouched
    copied = words & ~alone
    left = c.tokens.eq(target.roll(1, 1)) & torch.arange(target.size(1)).gt(0)
    right = c.tokens.eq(target.roll(-1, 1)) & words.roll(-1, 1)
    assert (left | right)[copied].all() and not c.masked[copied].any()
    assert right[:, 0][copied[:, 0]].all()  # the first word has only a right-hand neighbour
    last = words & ~words.roll(-1, 1) & copied
    assert left[last].all()  # the last word (before EOS) only a left-hand one
    inner = copied & words.roll(-1, 1) & torch.arange(target.size(1)).gt(0)
    took_left = (left & ~right)[inner].float().mean().item()
    assert abs(took_left - 0.5) < 0.03  # both sides, about equally often


def test_neighbour_copies_take_their_share_from_the_masked_band_only():
    target = batch()
    plain = run(target, mask_ratio=0.8, random_prob=0.1, keep_prob=0.1)
    copies = run(target, mask_ratio=0.8, random_prob=0.1, keep_prob=0.1, neighbour_prob=0.3)
    assert torch.equal(plain.noised, copies.noised)
    unmasked = ~plain.masked  # random words, kept words and untouched ones are the same in both
    assert torch.equal(plain.tokens[unmasked], copies.tokens[unmasked])
    became_copies = plain.masked & ~copies.masked
    assert abs(became_copies.sum().item() / plain.noised.sum().item() - 0.3) < 0.015
    neighbour, _ = neighbour_words(target, target.ne(PAD) & target.ne(EOS), example_keys(
        torch.arange(target.size(0)), seed=1, update=0))
    assert torch.equal(copies.tokens[became_copies], neighbour[became_copies])


def test_fully_masked_target_masks_every_word_and_keeps_eos_and_padding():
    target = batch(n=50)
    masked = fully_masked(target, pad=PAD, eos=EOS, mask=MASK)
    words = target.ne(PAD) & target.ne(EOS)
    assert masked[words].eq(MASK).all() and torch.equal(masked[~words], target[~words])


def key_drawing_one(stream: str) -> torch.Tensor:
    """A key (1) whose draw of STREAM at position 0 is the largest 32-bit hash, which float32 rounds to 1.0:
    hash32 is a bijection, so it is inverted step by step."""
    inverse = pow(0x45D9F3B, -1, 2**32)

    def unhash(y: int) -> int:
        for _ in range(2):
            y = (((y >> 16) ^ y) * inverse) & 0xFFFFFFFF
        return (y >> 16) ^ y

    position = int(hash32(torch.tensor([0x51ED27]))[0])
    keyed = unhash(unhash(2**32 - 1) ^ position)
    return torch.tensor([keyed ^ ((STREAMS[stream] * 0x9E3779B1) & 0xFFFFFFFF)])


def test_the_largest_hash_draws_just_below_one():
    draw = uniform(key_drawing_one("noise"), "noise", 1).item()
    assert draw < 1.0 and draw > 1.0 - 1e-6


def test_a_word_whose_noise_draw_is_the_largest_is_still_noised_at_ratio_one():
    keys = key_drawing_one("noise")
    c = corrupt(torch.tensor([[LOW + 3, EOS]]), keys, pad=PAD, eos=EOS, mask=MASK, random_low=LOW, random_high=HIGH,
                mask_ratio=1.0, random_prob=0.0, keep_prob=0.0)
    assert c.masked[0, 0] and c.tokens[0, 0] == MASK


def test_a_random_token_draw_that_rounds_up_still_gives_a_regular_word():
    keys = key_drawing_one("random_token")
    assert uniform(keys, "random_token", 1).item() > 1.0 - 1e-6
    target = torch.tensor([[LOW + 3, EOS]])
    c = corrupt(target, keys, pad=PAD, eos=EOS, mask=MASK, random_low=LOW, random_high=HIGH, mask_ratio=1.0,
                random_prob=1.0, keep_prob=0.0)
    assert c.noised[0, 0] and not c.masked[0, 0]
    assert c.tokens[0, 0] == HIGH - 1  # the last regular word, not the first id past the range
