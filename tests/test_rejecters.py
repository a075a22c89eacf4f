import re

import pytest
import torch

from conftest import decoding_options
from fairseq_gmlm.errors import UsageError
from fairseq_gmlm.generation.refinement import Vocabulary, refine_step
from fairseq_gmlm.generation.rejecters import (
    REJECTERS, candidate_scores, cosine_schedule_count, less_confident_copies, linear_schedule_count, next_best,
    reject, reject_lowest, replace, stutter, stutter_rule,
)

BOS, PAD, EOS, MASK, LENGTH = 0, 1, 2, 8, 9
NEVER_PREDICTED = [BOS, PAD, EOS, MASK, LENGTH]
tokens = torch.tensor([[5, 6, 6, 7, 8, EOS], [9, 9, 9, EOS, PAD, PAD]])
editable = tokens.ne(PAD) & tokens.ne(EOS)
scores = torch.tensor([[-0.1, -2.0, -0.5, -3.0, -0.2, -9.0], [-1.0, -0.1, -2.0, -9.0, -9.0, -9.0]])


def test_linear_schedule_rejects_nothing_after_the_last_pass():
    lengths = torch.tensor([10, 3])
    # 5 passes (max_iter 4): after pass t reject floor(L * (4 - t) / 5)
    assert [linear_schedule_count(lengths, t, 4).tolist() for t in range(5)] == [[8, 2], [6, 1], [4, 1], [2, 0], [0, 0]]


def test_cosine_schedule_keeps_more_masked_early_and_rejects_nothing_after_the_last_pass():
    lengths = torch.tensor([20, 3])
    # 5 passes: floor(L * cos(pi/2 * (t + 1) / 5)) = 95%, 81%, 59%, 31% of L, then 0
    assert [cosine_schedule_count(lengths, t, 4).tolist() for t in range(5)] == [[19, 2], [16, 2], [11, 1], [6, 0], [0, 0]]
    rejected = reject("cosine", scores, editable, 0, 4)
    assert rejected.tolist() == reject_lowest(scores, editable, torch.tensor([4, 2])).tolist()


def test_reject_lowest_picks_the_least_confident_editable_tokens_only():
    rejected = reject_lowest(scores, editable, torch.tensor([2, 1]))
    assert rejected.tolist() == [
        [False, True, False, True, False, False],  # -2.0 and -3.0; EOS (-9) is not editable
        [False, False, True, False, False, False],
    ]


def test_passthrough_keeps_everything_and_bottom_fraction_rounds_down():
    assert not reject("passthrough", scores, editable, 0, 4).any()
    rejected = reject("bottom-fraction", scores, editable, 0, 4, fraction=0.5)
    assert rejected.sum(1).tolist() == [2, 1]
    assert reject("bottom-k", scores, editable, 3, 4, k=1).sum(1).tolist() == [1, 1]


def test_stutter_marks_second_and_later_copies_of_a_repeat():
    assert stutter(tokens, editable).tolist() == [
        [False, False, True, False, False, False],
        [False, True, True, False, False, False],
    ]


def test_replacement_takes_previous_initial_or_summed_argmax_at_rejected_positions():
    predicted = torch.tensor([[5, 6, EOS]])
    rejected = torch.tensor([[False, True, False]])
    previous, initial = torch.tensor([[4, 4, EOS]]), torch.tensor([[3, 3, EOS]])
    summed = torch.zeros(1, 3, 10)
    summed[0, 1, 7] = 1.0
    assert replace("previous", predicted, rejected, previous, initial).tolist() == [[5, 4, EOS]]
    assert replace("initial", predicted, rejected, previous, initial).tolist() == [[5, 3, EOS]]
    summed_fill = replace("logits-sum", predicted, rejected, previous, initial, summed, NEVER_PREDICTED)
    assert summed_fill.tolist() == [[5, 7, EOS]]


def summed_favouring_never_predicted(n: int, t: int, word: int) -> torch.Tensor:
    """N x T x V log-prob sums in which every never-predicted id beats everything and WORD is the best word."""
    summed = torch.full((n, t, 10), -5.0)
    summed[..., NEVER_PREDICTED] = 0.0
    summed[..., word] = -1.0
    return summed


def test_logits_sum_replacement_never_writes_eos_padding_mask_or_length():
    predicted = torch.tensor([[5, 6, 7, EOS]])
    rejected = torch.tensor([[True, True, True, False]])
    fill = replace("logits-sum", predicted, rejected, predicted, predicted, summed_favouring_never_predicted(1, 4, 4),
                   NEVER_PREDICTED)
    assert fill.tolist() == [[4, 4, 4, EOS]]


def test_refine_step_with_logits_sum_feeds_only_predictable_words_to_the_next_pass():
    vocab = Vocabulary(pad=PAD, eos=EOS, mask=MASK, random_low=3, random_high=MASK, never_predicted=NEVER_PREDICTED)
    rejection = decoding_options(rejecter="bottom-k", reject_k=2, replacement="logits-sum").rejection
    decoder_input = torch.tensor([[MASK, MASK, MASK, EOS], [MASK, EOS, PAD, PAD]])
    log_probs = summed_favouring_never_predicted(2, 4, 6).log_softmax(-1)
    tokens = torch.full_like(decoder_input, 6)
    _, _, next_input = refine_step(log_probs, tokens, decoder_input, decoder_input, 0, 4, vocab, rejection,
                                   log_probs * 3)
    assert next_input.tolist() == [[6, 6, 6, EOS], [6, EOS, PAD, PAD]]


@pytest.mark.parametrize("repredict", ["all", "open"])
def test_repredict_open_changes_only_the_positions_the_input_held_open_and_keeps_the_others_scores(repredict):
    """Mask-Predict's rule (open): a word kept from an earlier pass stays, with the log-probability it was
    predicted with; PaDIR's (all): every word takes the pass's prediction and its log-probability."""
    vocab = Vocabulary(pad=PAD, eos=EOS, mask=MASK, random_low=3, random_high=MASK, never_predicted=NEVER_PREDICTED)
    # stutter rule off: the pass predicts the same word everywhere, and this test is about which positions take it
    rejection = decoding_options(rejecter="passthrough", repredict=repredict, stutter_remask="off").rejection
    decoder_input = torch.tensor([[5, MASK, 6, MASK, EOS]])  # words 5 and 6 kept from the pass before
    initial = torch.tensor([[MASK, MASK, MASK, MASK, EOS]])
    log_probs = torch.full((1, 5, 10), -5.0)
    log_probs[0, :4, 7] = -0.5  # this pass predicts 7 everywhere
    tokens = torch.full_like(decoder_input, 7)
    previous = torch.tensor([[-0.25, -3.0, -0.75, -3.0, 0.0]])
    predicted, token_log_probs, _ = refine_step(log_probs, tokens, decoder_input, initial, 2, 4, vocab, rejection,
                                                previous_log_probs=previous)
    if repredict == "open":
        assert predicted.tolist() == [[5, 7, 6, 7, EOS]]
        assert token_log_probs[0, :4].tolist() == [-0.25, -0.5, -0.75, -0.5]
    else:
        assert predicted.tolist() == [[7, 7, 7, 7, EOS]]
        assert token_log_probs[0, :4].tolist() == [-0.5] * 4


def test_repredict_open_needs_re_masking():
    with pytest.raises(UsageError, match="--repredict open .* --replacement initial"):
        decoding_options(repredict="open", replacement="previous").check()
    with pytest.raises(UsageError, match="unknown --repredict 'masked'"):
        decoding_options(repredict="masked").check()


def test_candidate_scores_ignore_padding():
    log_probs = torch.tensor([[-1.0, -3.0, -2.0, 0.0, 0.0], [-1.0, -3.0, -2.0, -50.0, -50.0]])
    real = torch.tensor([[True, True, True, False, False]] * 2)
    assert candidate_scores(log_probs, real, None, "mean", 0.0).tolist() == [-2.0, -2.0]
    # with a brevity penalty: the sum divided by ((5 + 3) / 6) ** alpha
    assert torch.allclose(candidate_scores(log_probs, real, None, "mean", 1.0), torch.tensor([-6.0 / (8 / 6)] * 2))
    # the length model's log-probability joins the sum before normalisation
    with_length = candidate_scores(log_probs, real, torch.tensor([-3.0, 0.0]), "mean", 0.0)
    assert with_length.tolist() == [-3.0, -2.0]


def test_confidence_rejecter_keeps_every_prediction_above_the_threshold():
    log_probs = torch.log(torch.tensor([[0.95, 0.5, 0.99, 0.2, 0.8, 1.0]]))
    editable_row = torch.tensor([[True, True, True, True, True, False]])
    rejected = reject("confidence", log_probs, editable_row, 0, 9, threshold=0.9)
    assert rejected.tolist() == [[False, True, False, True, True, False]]
    # the same predictions at a lower threshold: only the 0.2 one goes
    assert reject("confidence", log_probs, editable_row, 0, 9, threshold=0.3).tolist() == [
        [False, False, False, True, False, False]]


def test_confidence_rejecter_closes_at_least_one_open_position_per_pass():
    log_probs = torch.log(torch.tensor([[0.3, 0.2, 0.4, 0.1, 1.0]]))
    editable_row = torch.tensor([[True, True, True, True, False]])
    # all four below 0.9 and all four open: the single most confident (0.4) is kept
    rejected = reject("confidence", log_probs, editable_row, 0, 9, threshold=0.9)
    assert rejected.tolist() == [[True, True, False, True, False]]
    # two still open (positions 0 and 1), two closed earlier: one more closes, and the rest stay rejected
    opened = torch.tensor([[True, True, False, False, False]])
    assert reject("confidence", log_probs, editable_row, 3, 9, opened, threshold=0.9).sum().item() == 1
    # nothing open: nothing rejected, whatever the confidence
    assert not reject("confidence", log_probs, editable_row, 3, 9, torch.zeros_like(opened), threshold=0.9).any()


def test_confidence_rejecter_rejects_nothing_after_the_last_allowed_pass():
    log_probs = torch.log(torch.tensor([[0.1, 0.1, 0.1]]))
    editable_row = torch.ones(1, 3, dtype=torch.bool)
    assert reject("confidence", log_probs, editable_row, 2, 3, threshold=0.9).sum().item() == 2
    assert not reject("confidence", log_probs, editable_row, 3, 3, threshold=0.9).any()


def test_random_rejecter_commits_each_position_once_in_a_uniformly_random_order():
    torch.manual_seed(0)
    rows, length, passes = 3000, 4, 4  # one position committed per pass
    editable_rows = torch.ones(rows, length, dtype=torch.bool)
    opened = editable_rows.clone()
    first_committed = None
    for step in range(passes):
        rejected = reject("random", torch.zeros(rows, length), editable_rows, step, passes - 1, opened=opened)
        assert not (rejected & ~opened).any()  # a committed position is never re-opened
        assert rejected.sum(1).eq(length - step - 1).all()  # the linear schedule's count
        if first_committed is None:
            first_committed = (opened & ~rejected).float().argmax(1)
        opened = rejected
    assert not opened.any()
    # whatever the scores say (all equal here; the order ignores them), each position goes first ~1/4 of the time
    shares = torch.bincount(first_committed, minlength=length).float() / rows
    assert (shares - 1 / length).abs().max() < 0.04, shares
    confident = torch.tensor([[0.0, -5.0, -5.0, -5.0]]).expand(rows, -1)
    kept_first = ~reject("random", confident, editable_rows, 0, passes - 1)
    assert kept_first[:, 0].float().mean() < 0.4  # the most confident position is not favoured


def test_sum_score_is_padirs_plain_sum_and_ignores_the_length_model():
    log_probs = torch.tensor([[-1.0, -1.0, 0.0], [-1.0, -1.0, -1.0]])
    real = torch.tensor([[True, True, False], [True, True, True]])
    length = torch.tensor([-5.0, 0.0])
    assert candidate_scores(log_probs, real, length, "sum", 0.0).tolist() == [-2.0, -3.0]
    # the mean score prefers the longer candidate here (length model), the sum the shorter one
    assert candidate_scores(log_probs, real, length, "mean", 0.0).tolist() == [-3.5, -1.0]


def test_best_candidates_index_each_sentences_highest_score():
    from fairseq_gmlm.generation.rejecters import best_candidates

    scores = torch.tensor([-3.0, -1.0, -2.0, -0.5, -4.0, -9.0])
    assert best_candidates(scores, 3).tolist() == [1, 3]
    assert best_candidates(scores, 2).tolist() == [1, 3, 4]


def test_unknown_rejecter_or_replacement_is_refused_with_the_flag_and_the_choices():
    with pytest.raises(UsageError, match=rf"^unknown --rejecter 'best'; choose one of {re.escape(', '.join(REJECTERS))}$"):
        reject("best", scores, editable, 0, 4)
    assert {"passthrough", "linear", "bottom-k", "bottom-fraction"} <= set(REJECTERS)
    with pytest.raises(UsageError, match=r"^unknown --replacement 'mask'; choose one of previous, initial, "
                                         r"logits-sum$"):
        replace("mask", tokens, editable, tokens, tokens)


def test_logits_sum_replacement_without_the_sums_or_the_never_predicted_ids_is_a_caller_bug():
    summed = torch.zeros(2, 6, 10)
    for missing in ({"summed_log_probs": summed}, {"never_predicted": NEVER_PREDICTED}, {}):
        with pytest.raises(ValueError, match=r"^replace\('logits-sum', \.\.\.\) needs summed_log_probs and "
                                             r"never_predicted$"):
            replace("logits-sum", tokens, editable, tokens, tokens, **missing)


def test_refine_step_with_stutter_rejects_the_stutters_and_the_rejecter_choice_together():
    vocab = Vocabulary(pad=PAD, eos=EOS, mask=MASK, random_low=3, random_high=MASK, never_predicted=NEVER_PREDICTED)
    rejection = decoding_options(rejecter="bottom-k", reject_k=1, replacement="initial", stutter_remask="on").rejection
    decoder_input = torch.full((1, 5), MASK).index_fill(1, torch.tensor([4]), EOS)
    predicted = torch.tensor([[5, 5, 6, 7, EOS]])
    log_probs = torch.full((1, 5, 10), -20.0)
    log_probs[0, torch.arange(5), predicted[0]] = torch.tensor([-0.1, -0.2, -0.3, -3.0, -0.1])  # w7 least confident
    _, _, next_input = refine_step(log_probs, predicted, decoder_input, decoder_input, 0, 4, vocab, rejection)
    assert next_input.tolist() == [[5, MASK, 6, MASK, EOS]]  # the second 5 (stutter) and 7 (lowest) re-masked


def test_less_confident_copies_mark_the_lower_scored_of_each_equal_editable_pair():
    copies = less_confident_copies(tokens, scores, editable)
    assert copies.tolist() == [
        [False, True, False, False, False, False],  # 6 at -2.0 loses to 6 at -0.5
        [True, False, True, False, False, False],  # 9 9 9 at -1.0 -0.1 -2.0: both outer copies lose to the middle
    ]  # the two paddings are equal but not editable
    for right in (0.0, 5e-5):  # a tie, or a difference float rounding can make: the right copy
        near = less_confident_copies(torch.tensor([[4, 4, EOS]]), torch.tensor([[0.0, right, 0.0]]),
                                     torch.tensor([[True, True, False]]))
        assert near.tolist() == [[False, True, False]]


def test_reject_lowest_takes_equal_scores_left_first_at_any_canvas_width():
    for width in (4, 7, 40):  # alone or padded in a batch
        scores = torch.zeros(1, width).index_fill(1, torch.tensor([0, 1, 2]), float("-inf"))
        editable = torch.arange(width)[None, :] < 4
        assert reject_lowest(scores, editable, torch.tensor([2])).nonzero()[:, 1].tolist() == [0, 1]


def test_next_best_takes_the_most_probable_other_predictable_word_at_the_given_positions_only():
    log_probs = torch.full((1, 3, 10), -20.0)
    log_probs[0, :, 5] = -0.1  # every position prefers word 5
    log_probs[0, :, MASK] = -0.5  # then <mask>, which is never predicted
    log_probs[0, 0, 6], log_probs[0, 1, 7], log_probs[0, 2, 6] = -1.0, -1.5, -2.0
    words = torch.tensor([[5, 5, 5]])
    assert next_best(log_probs, words, torch.tensor([[False, True, True]]), NEVER_PREDICTED).tolist() == [[5, 7, 6]]
    assert next_best(log_probs, words, torch.zeros(1, 3, dtype=torch.bool), NEVER_PREDICTED).tolist() == [[5, 5, 5]]


def test_refine_step_with_stutter_first_re_masks_the_copy_within_the_schedules_count():
    vocab = Vocabulary(pad=PAD, eos=EOS, mask=MASK, random_low=3, random_high=MASK, never_predicted=NEVER_PREDICTED)
    decoder_input = torch.full((1, 5), MASK).index_fill(1, torch.tensor([4]), EOS)
    predicted = torch.tensor([[5, 5, 6, 7, EOS]])
    log_probs = torch.full((1, 5, 10), -20.0)
    log_probs[0, torch.arange(5), predicted[0]] = torch.tensor([-0.1, -0.2, -0.3, -3.0, -0.1])  # w7 least confident
    log_probs[0, 1, 4] = -2.5  # the copy's next best word
    # bottom-k 1 after the first pass: its one rejection is the copy, not the least confident w7; the linear
    # schedule after the last pass rejects nothing, and the output holds the copy's next best word
    for rejecter, step, expected in (("bottom-k", 0, [[5, MASK, 6, 7, EOS]]), ("linear", 4, [[5, 4, 6, 7, EOS]])):
        rejection = decoding_options(rejecter=rejecter, reject_k=1, replacement="initial",
                                     stutter_remask="first").rejection
        words, word_log_probs, next_input = refine_step(log_probs, predicted, decoder_input, decoder_input, step, 4,
                                                        vocab, rejection)
        assert words.tolist() == [[5, 4, 6, 7, EOS]]  # the less confident 5 takes its next best word
        assert word_log_probs[0, :4].tolist() == pytest.approx([-0.1, -2.5, -0.3, -3.0])
        assert next_input.tolist() == expected
    off = decoding_options(rejecter="bottom-k", reject_k=1, replacement="initial", stutter_remask="off").rejection
    words, _, next_input = refine_step(log_probs, predicted, decoder_input, decoder_input, 0, 4, vocab, off)
    assert words.tolist() == predicted.tolist() and next_input.tolist() == [[5, 5, 6, MASK, EOS]]


def test_stutter_rule_is_parsed_from_its_names_or_a_bool_and_anything_else_is_refused_naming_the_flag():
    assert [stutter_rule(value) for value in ("first", "on", "off", True, False)] == [
        "first", "on", "off", "on", "off"]
    with pytest.raises(UsageError, match=r"^unknown --stutter-remask 'yes'; choose one of first, on, off$"):
        decoding_options(stutter_remask="yes").rejection.check()
