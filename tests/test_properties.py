"""Properties of the pure functions on generated examples (hypothesis): relative-position buckets, corruption,
rejecters, replacement, candidate scores, length selection and the initial canvas.

Examples stay small and few so the module runs in seconds."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fairseq_gmlm.generation.refinement import Vocabulary, candidate_lengths, initial_tokens
from fairseq_gmlm.generation.rejecters import (
    TIE, candidate_scores, cosine_schedule_count, less_confident_copies, linear_schedule_count, reject, reject_lowest,
    replace, stutter,
)
from fairseq_gmlm.models.length_head import MIN_LENGTH, top_lengths
from fairseq_gmlm.models.t5_layers import relative_position_bucket
from fairseq_gmlm.noising import corrupt, example_keys, glance

FEW = settings(max_examples=40, deadline=None)
PAD, EOS, MASK, LOW, HIGH = 1, 2, 99, 4, 30
VOCAB = Vocabulary(pad=PAD, eos=EOS, mask=MASK, random_low=LOW, random_high=HIGH, never_predicted=[0, PAD, EOS, MASK])

bucket_shapes = st.sampled_from([(32, 128), (16, 32), (8, 16), (4, 8)])
offsets = st.lists(st.integers(-600, 600), min_size=1, max_size=40).map(torch.tensor)


# ---- relative position buckets -------------------------------------------------------------------------------

def assert_grows_with_distance(distance, bucket):
    order = distance.argsort()
    assert (bucket[order].diff() >= 0).all()


@FEW
@given(shape=bucket_shapes, offset=offsets)
def test_bidirectional_buckets_keep_sides_apart_are_exact_near_and_grow_with_distance(shape, offset):
    num_buckets, max_distance = shape
    half = num_buckets // 2
    bucket = relative_position_bucket(offset, True, num_buckets, max_distance)
    assert torch.equal(bucket >= half, offset > 0)  # keys to the right use the upper half
    within_side = bucket % half
    near = offset.abs() < half // 2
    assert torch.equal(within_side[near], offset.abs()[near])
    assert (within_side[offset.abs() >= max_distance] == half - 1).all()
    for side in (offset > 0, offset <= 0):
        assert_grows_with_distance(offset[side].abs(), within_side[side])


@FEW
@given(shape=bucket_shapes, offset=offsets)
def test_unidirectional_buckets_put_every_key_to_the_right_in_bucket_zero(shape, offset):
    num_buckets, max_distance = shape
    bucket = relative_position_bucket(offset, False, num_buckets, max_distance)
    assert ((bucket >= 0) & (bucket < num_buckets)).all()
    assert (bucket[offset >= 0] == 0).all()
    near = (offset <= 0) & (-offset < num_buckets // 2)
    assert torch.equal(bucket[near], -offset[near])
    assert (bucket[-offset >= max_distance] == num_buckets - 1).all()
    left = offset <= 0
    assert_grows_with_distance(-offset[left], bucket[left])


# ---- corruption ----------------------------------------------------------------------------------------------

@st.composite
def targets(draw, max_rows=6, max_length=12):
    """Right-padded B x T targets of words in [LOW, HIGH), each ending in EOS, and their example ids."""
    lengths = draw(st.lists(st.integers(1, max_length), min_size=1, max_size=max_rows))  # words + EOS
    width = max(lengths)
    rows = [draw(st.lists(st.integers(LOW, HIGH - 1), min_size=n - 1, max_size=n - 1)) + [EOS] + [PAD] * (width - n)
            for n in lengths]
    ids = draw(st.lists(st.integers(0, 10**6), min_size=len(rows), max_size=len(rows), unique=True))
    return torch.tensor(rows), torch.tensor(ids)


probabilities = st.one_of(st.none(), st.floats(0.0, 1.0))
half_probabilities = st.one_of(st.none(), st.floats(0.0, 0.5))


def corrupt_batch(target, ids, seed=3, update=5, **probabilities):
    return corrupt(target, example_keys(ids, seed, update), pad=PAD, eos=EOS, mask=MASK, random_low=LOW,
                   random_high=HIGH, **probabilities)


@FEW
@given(batch=targets(), mask_ratio=probabilities, random_prob=half_probabilities, keep_prob=half_probabilities)
def test_corruption_changes_only_noised_words_into_mask_or_regular_words(batch, mask_ratio, random_prob, keep_prob):
    target, ids = batch
    c = corrupt_batch(target, ids, mask_ratio=mask_ratio, random_prob=random_prob, keep_prob=keep_prob)
    words = target.ne(PAD) & target.ne(EOS)
    assert not (c.noised & ~words).any() and not (c.masked & ~c.noised).any()
    assert torch.equal(c.tokens[~c.noised], target[~c.noised])  # EOS, padding and clean words kept
    assert torch.equal(c.tokens.eq(MASK), c.masked)
    changed = c.noised & ~c.masked
    assert ((c.tokens[changed] >= LOW) & (c.tokens[changed] < HIGH)).all()


@FEW
@given(batch=targets(), random_prob=st.floats(0.0, 0.5), keep_prob=st.floats(0.0, 0.5))
def test_masking_ratio_one_noises_every_word_and_zero_none(batch, random_prob, keep_prob):
    target, ids = batch
    words = target.ne(PAD) & target.ne(EOS)
    assert torch.equal(corrupt_batch(target, ids, mask_ratio=1.0, random_prob=random_prob, keep_prob=keep_prob).noised,
                       words)
    none = corrupt_batch(target, ids, mask_ratio=0.0, random_prob=random_prob, keep_prob=keep_prob)
    assert not none.noised.any() and torch.equal(none.tokens, target)


@FEW
@given(batch=targets(), mask_ratio=probabilities)
def test_noised_words_are_all_masked_without_random_or_kept_words_and_all_kept_with_keep_one(batch, mask_ratio):
    target, ids = batch
    masked = corrupt_batch(target, ids, mask_ratio=mask_ratio, random_prob=0.0, keep_prob=0.0)
    assert torch.equal(masked.masked, masked.noised)
    kept = corrupt_batch(target, ids, mask_ratio=mask_ratio, random_prob=0.0, keep_prob=1.0)
    assert not kept.masked.any() and torch.equal(kept.tokens, target)
    assert torch.equal(kept.noised, masked.noised)  # which words are noised does not depend on their fate


@FEW
@given(batch=targets(), rows=st.data())
def test_an_example_is_corrupted_the_same_way_in_any_batch(batch, rows):
    target, ids = batch
    whole = corrupt_batch(target, ids)
    subset = torch.tensor(sorted(rows.draw(st.sets(st.integers(0, target.size(0) - 1), min_size=1))))
    part = corrupt_batch(target[subset], ids[subset])
    assert torch.equal(part.tokens, whole.tokens[subset]) and torch.equal(part.noised, whole.noised[subset])


@FEW
@given(batch=targets(), ratio=st.floats(0.0, 1.0), wrong=st.data())
def test_glancing_reveals_floor_of_ratio_times_the_wrong_words_from_the_reference(batch, ratio, wrong):
    target, ids = batch
    words = target.ne(PAD) & target.ne(EOS)
    flips = torch.tensor(wrong.draw(st.lists(st.booleans(), min_size=target.numel(), max_size=target.numel())))
    predicted = torch.where(flips.view_as(target) & words, torch.full_like(target, HIGH), target)
    c = glance(target, predicted, example_keys(ids, 3, 5), ratio=ratio, pad=PAD, eos=EOS, mask=MASK)
    expected = (ratio * (predicted.ne(target) & words).sum(1).double()).floor().long()
    revealed = words & c.tokens.ne(MASK)
    assert revealed.sum(1).tolist() == expected.tolist()
    assert torch.equal(c.tokens[~c.masked], target[~c.masked]) and torch.equal(c.masked, words & ~revealed)


# ---- rejecters, replacement, candidate scores ----------------------------------------------------------------

@st.composite
def passes(draw, max_rows=5, max_length=10):
    """Per-position scores (N x T), the editable mask and padded token rows of one refinement pass."""
    lengths = draw(st.lists(st.integers(1, max_length), min_size=1, max_size=max_rows))
    width = max(lengths)
    tokens = torch.tensor([draw(st.lists(st.integers(LOW, LOW + 3), min_size=n - 1, max_size=n - 1)) + [EOS]
                           + [PAD] * (width - n) for n in lengths])
    scores = torch.tensor(draw(st.lists(st.lists(st.floats(-20.0, 0.0, width=32), min_size=width, max_size=width),
                                        min_size=len(lengths), max_size=len(lengths))))
    return scores, tokens.ne(PAD) & tokens.ne(EOS), tokens


@FEW
@given(batch=passes(), counts=st.lists(st.integers(0, 12), min_size=5, max_size=5))
def test_reject_lowest_rejects_count_editable_positions_none_better_than_a_kept_one(batch, counts):
    scores, editable, _ = batch
    count = torch.tensor(counts[: scores.size(0)])
    rejected = reject_lowest(scores, editable, count)
    assert not (rejected & ~editable).any()
    assert rejected.sum(1).tolist() == torch.minimum(count, editable.sum(1)).tolist()
    for row in range(scores.size(0)):
        kept = editable[row] & ~rejected[row]
        if rejected[row].any() and kept.any():
            assert scores[row][rejected[row]].max() <= scores[row][kept].min()


@pytest.mark.parametrize("schedule", [linear_schedule_count, cosine_schedule_count])
@FEW
@given(lengths=st.lists(st.integers(0, 60), min_size=1, max_size=6), max_step=st.integers(0, 12))
def test_schedules_reject_fewer_each_pass_and_none_after_the_last(schedule, lengths, max_step):
    """Linear: exactly floor(L * (max_step - step) / (max_step + 1)); cosine: never fewer than that."""
    num_editable = torch.tensor(lengths)
    counts = [schedule(num_editable, step, max_step) for step in range(max_step + 1)]
    for earlier, later in zip(counts, counts[1:]):
        assert (later <= earlier).all()
    assert (counts[0] <= num_editable).all() and not counts[-1].any()
    for step, count in enumerate(counts):
        linear = torch.tensor([math.floor(n * (max_step - step) / (max_step + 1)) for n in lengths])
        assert (count == linear).all() if schedule is linear_schedule_count else (count >= linear).all()


@FEW
@given(batch=passes(), kind=st.sampled_from(["passthrough", "linear", "bottom-k", "bottom-fraction"]),
       step=st.integers(0, 4), k=st.integers(0, 6), fraction=st.floats(0.0, 1.0))
def test_every_rejecter_rejects_the_expected_number_of_editable_positions(batch, kind, step, k, fraction):
    scores, editable, _ = batch
    rejected = reject(kind, scores, editable, step, 4, k=k, fraction=fraction)
    n = editable.sum(1)
    expected = {"passthrough": torch.zeros_like(n), "linear": n * (4 - step) // 5,
                "bottom-k": n.clamp(max=k), "bottom-fraction": (n.float() * fraction).floor().long()}[kind]
    assert not (rejected & ~editable).any() and rejected.sum(1).tolist() == expected.tolist()


@FEW
@given(batch=passes())
def test_stutter_marks_exactly_the_editable_repeats_of_a_left_neighbour(batch):
    _, editable, tokens = batch
    marked = stutter(tokens, editable)
    for row in range(tokens.size(0)):
        for t in range(tokens.size(1)):
            repeat = t > 0 and tokens[row, t] == tokens[row, t - 1]
            assert bool(marked[row, t]) == (repeat and bool(editable[row, t]))


@FEW
@given(batch=passes())
def test_less_confident_copies_mark_one_side_of_every_repeat_and_only_a_side_that_loses(batch):
    scores, editable, tokens = batch
    copies = less_confident_copies(tokens, scores, editable)
    assert not (copies & ~editable).any()
    for row in range(tokens.size(0)):
        for t in range(1, tokens.size(1)):
            if tokens[row, t] == tokens[row, t - 1] and editable[row, t] and editable[row, t - 1]:
                assert copies[row, t] or copies[row, t - 1]  # every repeat loses a side
        for t in copies[row].nonzero().flatten().tolist():  # and a marked word loses to an equal neighbour:
            def loses_to(u):  # the left one only by more than TIE, the right one also on a (near-)tie
                if not (0 <= u < tokens.size(1) and editable[row, u] and tokens[row, u] == tokens[row, t]):
                    return False
                return scores[row, t] <= scores[row, u] + TIE if u < t else scores[row, u] > scores[row, t] + TIE
            assert loses_to(t - 1) or loses_to(t + 1)


@FEW
@given(batch=passes(), kind=st.sampled_from(["previous", "initial", "logits-sum"]), rejected_bits=st.data())
def test_replacement_keeps_predictions_and_fills_only_rejected_positions(batch, kind, rejected_bits):
    scores, editable, tokens = batch
    n, t = tokens.shape
    rejected = torch.tensor(rejected_bits.draw(st.lists(st.booleans(), min_size=n * t, max_size=n * t))).view(n, t)
    rejected = rejected & editable
    previous, initial = torch.full_like(tokens, 20), torch.full_like(tokens, MASK)
    summed = torch.zeros(n, t, HIGH + 70)
    summed[..., 25] = 1.0
    summed[..., MASK] = 5.0  # never predicted: must not win
    out = replace(kind, tokens, rejected, previous, initial, summed, VOCAB.never_predicted)
    fill = {"previous": 20, "initial": MASK, "logits-sum": 25}[kind]
    assert torch.equal(out[~rejected], tokens[~rejected]) and (out[rejected] == fill).all()


@FEW
@given(batch=passes(), alpha=st.floats(0.0, 2.0), junk=st.floats(-50.0, 0.0),
       length_log_probs=st.one_of(st.none(), st.floats(-10.0, 0.0)))
def test_candidate_scores_use_real_positions_only_and_follow_the_length_normalisation(batch, alpha, junk,
                                                                                     length_log_probs):
    scores, _, tokens = batch
    real = tokens.ne(PAD)
    lengths = length_log_probs if length_log_probs is None else torch.full((tokens.size(0),), length_log_probs)
    score = candidate_scores(scores, real, lengths, "mean", alpha)
    torch.testing.assert_close(candidate_scores(scores.masked_fill(~real, junk), real, lengths, "mean", alpha), score)
    total = scores.masked_fill(~real, 0).sum(1) + (0 if lengths is None else lengths)
    length = real.sum(1).float()
    expected = total / (((5 + length) / 6) ** alpha if alpha > 0 else length)
    torch.testing.assert_close(score, expected)
    better = candidate_scores(scores + 0.5 * real, real, lengths, "mean", alpha)  # every real token more likely
    assert (better > score).all()


# ---- lengths and the initial canvas --------------------------------------------------------------------------

@st.composite
def length_distributions(draw, max_rows=4, classes=20):
    rows = draw(st.integers(1, max_rows))
    values = draw(st.lists(st.lists(st.floats(-10.0, 0.0, width=32), min_size=classes, max_size=classes),
                           min_size=rows, max_size=rows))
    return torch.tensor(values)


@FEW
@given(log_probs=length_distributions(), k=st.integers(1, 6), max_length=st.data())
def test_top_lengths_are_the_likeliest_allowed_lengths_best_first(log_probs, k, max_length):
    rows, classes = log_probs.shape
    limit = torch.tensor(max_length.draw(st.lists(st.integers(0, classes + 3), min_size=rows, max_size=rows)))
    top = top_lengths(log_probs, k, limit)
    assert top.shape == (rows, k)
    upper = limit.clamp(min=MIN_LENGTH)
    for row in range(rows):
        allowed = list(range(MIN_LENGTH, min(int(upper[row]), classes - 1) + 1))
        chosen = top[row].tolist()
        assert all(length in allowed for length in chosen)
        distinct = min(k, len(allowed))
        values = log_probs[row, chosen[:distinct]]
        assert (values.diff() <= 0).all() and len(set(chosen[:distinct])) == distinct  # best first
        assert chosen[distinct:] == [chosen[0]] * (k - distinct)  # too few allowed: the best one repeated
        best_allowed = sorted(allowed, key=lambda length: -log_probs[row, length].item())
        assert values.min() >= log_probs[row, best_allowed[distinct - 1]]  # no better allowed length left out


@FEW
@given(top=st.lists(st.lists(st.integers(2, 30), min_size=1, max_size=3), min_size=1, max_size=3),
       offsets=st.sampled_from([1, 3, 5]), restarts=st.integers(1, 3), max_length=st.integers(2, 40))
def test_candidate_lengths_shift_each_length_by_every_offset_within_bounds(top, offsets, restarts, max_length):
    width = min(map(len, top))
    top = torch.tensor([row[:width] for row in top])
    lengths = candidate_lengths(top, offsets, restarts, max_length)
    assert lengths.shape == (top.size(0), width * offsets * restarts)
    assert ((lengths >= MIN_LENGTH) & (lengths <= max_length)).all()
    half = offsets // 2
    shifted = (top[:, :, None] + torch.arange(-half, half + 1)).clamp(MIN_LENGTH, max_length)  # B x K x O
    assert torch.equal(lengths.view(top.size(0), width, offsets, restarts),
                       shifted[..., None].expand(-1, -1, -1, restarts))


@FEW
@given(lengths=st.lists(st.integers(1, 12), min_size=1, max_size=6), init=st.sampled_from(["mask", "random"]))
def test_initial_canvas_has_words_then_eos_at_the_length_then_padding(lengths, init):
    tokens = initial_tokens(torch.tensor(lengths), VOCAB, init)
    assert tokens.size(1) == max(lengths)
    for row, length in enumerate(lengths):
        words = tokens[row, : length - 1]
        assert tokens[row, length - 1] == EOS and (tokens[row, length:] == PAD).all()
        if init == "mask":
            assert (words == MASK).all()
        else:
            assert ((words >= LOW) & (words < HIGH)).all()
