import torch

from fairseq_gmlm.noising import corrupt, example_keys

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
