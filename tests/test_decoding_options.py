"""The decoding options added with the confidence rejecter, the stop rules, the length choice and the loss
weighting: their checks, boundaries and small pure helpers."""

import pytest
import torch

from conftest import decoding_options
from fairseq_gmlm.criterions.gmlm_loss import position_weights
from fairseq_gmlm.errors import UsageError
from fairseq_gmlm.generation.refinement import (
    GMLMGenerator, Vocabulary, length_candidates, mean_log_probs,
)
from fairseq_gmlm.generation.rejecters import confidence_count
from fairseq_gmlm.models.length_head import expected_lengths, top_lengths

VOCAB = Vocabulary(pad=1, eos=2, mask=8, random_low=3, random_high=8, never_predicted=[0, 1, 2, 8, 9])


@pytest.mark.parametrize("field, value, flag, choices", [
    ("rejecter", "best", "--rejecter", "passthrough, linear, cosine, bottom-k, bottom-fraction, confidence, random"),
    ("replacement", "mask", "--replacement", "previous, initial, logits-sum"),
    ("candidate_score", "max", "--candidate-score", "mean, sum"),
    ("stop_rule", "never", "--stop-rule", "input, prediction"),
    ("length_choice", "median", "--length-choice", "mode, mean"),
])
def test_an_unknown_choice_is_refused_naming_its_flag_and_the_choices(field, value, flag, choices):
    with pytest.raises(UsageError, match=rf"^unknown {flag} '{value}'; choose one of {choices}$"):
        decoding_options(**{field: value}).check()


def test_option_bounds_are_inclusive_where_the_value_still_makes_sense():
    for fine in ({"reject_k": 0}, {"reject_fraction": 0.0}, {"reject_fraction": 1.0}, {"reject_threshold": 1.0}):
        decoding_options(**fine).check()
    for wrong, flag in (({"reject_k": -1}, "--reject-k"), ({"reject_fraction": 1.01}, "--reject-fraction"),
                        ({"reject_fraction": -0.01}, "--reject-fraction"), ({"reject_threshold": 1.5}, "--reject-threshold"),
                        ({"reject_threshold": 0.0}, "--reject-threshold")):
        with pytest.raises(UsageError, match=flag):
            decoding_options(**wrong).check()


def test_length_candidates_put_the_mean_first_then_the_most_likely_lengths():
    probs = torch.zeros(2, 10)
    probs[0, [3, 8]] = torch.tensor([0.6, 0.4])  # mean 5
    probs[1, [4, 5, 6]] = torch.tensor([0.2, 0.5, 0.3])  # mean 5.1
    log_probs = probs.clamp(min=1e-12).log()
    assert length_candidates(log_probs, 1, 9, "mean").tolist() == [[5], [5]]
    assert length_candidates(log_probs, 2, 9, "mean").tolist() == [[5, 3], [5, 5]]
    assert length_candidates(log_probs, 3, 9, "mean").tolist() == [[5, 3, 8], [5, 5, 6]]
    assert length_candidates(log_probs, 2, 9, "mode").tolist() == top_lengths(log_probs, 2, 9).tolist()


def test_expected_length_keeps_the_bounds_themselves():
    probs = torch.zeros(1, 10)
    probs[0, [2, 9]] = 0.5  # MIN_LENGTH and the limit itself are both allowed
    log_probs = probs.clamp(min=1e-12).log()
    assert expected_lengths(log_probs, 9).tolist() == [round(5.5)]
    assert expected_lengths(torch.zeros(3, 10).log_softmax(-1), torch.tensor([9, 4, 2])).tolist() == [
        round(sum(range(2, 10)) / 8), 3, 2]


def test_mean_log_probs_averages_probabilities_not_log_probabilities():
    first = torch.tensor([[0.9, 0.1]]).log()
    second = torch.tensor([[0.5, 0.5]]).log()
    assert torch.equal(mean_log_probs([first]), first)
    torch.testing.assert_close(mean_log_probs([first, second]).exp(), torch.tensor([[0.7, 0.3]]))


def test_confidence_count_is_per_candidate_and_keeps_a_prediction_exactly_at_the_threshold():
    scores = torch.log(torch.tensor([[0.5, 0.2, 0.9, 0.1], [0.96, 0.99, 0.1, 0.2]]))
    editable = torch.ones(2, 4, dtype=torch.bool)
    assert confidence_count(scores, editable, editable, 0, 9, threshold=0.5).tolist() == [2, 2]
    assert confidence_count(scores, editable, editable, 0, 9, threshold=0.95).tolist() == [3, 2]


def test_the_prediction_stop_rule_never_stops_after_the_first_pass_and_looks_at_each_candidate():
    generator = GMLMGenerator(VOCAB, decoding_options(stop_rule="prediction"))
    words = torch.tensor([[5, 6, 2], [5, 6, 2]])
    other = torch.tensor([[5, 6, 2], [5, 7, 2]])
    masked = torch.tensor([[8, 8, 2], [8, 8, 2]])
    assert generator.finished(0, words, words, masked, words, masked).tolist() == [False, False]
    assert generator.finished(1, words, other, masked, words, masked).tolist() == [True, False]


def test_loss_weighting_errors_name_the_flag():
    positions = torch.ones(1, 2, dtype=torch.bool)
    eos = torch.tensor([[False, True]])
    with pytest.raises(UsageError, match=r"^unknown --loss-weighting 'elbo'; choose one of uniform, inverse-ratio$"):
        position_weights("elbo", positions, eos, torch.ones(1, 1))
    with pytest.raises(UsageError, match=r"^--loss-weighting inverse-ratio needs the noise ratio of each example: "
                                         r"use --task translation_gmlm's corruption$"):
        position_weights("inverse-ratio", positions, eos, None)


def test_glancing_reports_each_examples_share_of_hidden_words_as_its_noise_ratio():
    from fairseq_gmlm import noising

    target = torch.tensor([[5, 6, 7, 3, 2], [5, 6, 2, 1, 1]])
    predicted = torch.tensor([[0, 0, 0, 0, 2], [5, 6, 2, 1, 1]])  # four wrong words; none wrong
    keys = noising.example_keys(torch.tensor([0, 1]), seed=1, update=3)
    corruption = noising.glance(target, predicted, keys, ratio=0.5, pad=1, eos=2, mask=9)
    assert corruption.ratio.shape == (2, 1) and corruption.ratio.dtype == torch.float32
    assert corruption.ratio.view(-1).tolist() == [0.5, 1.0]  # 2 of 4 words revealed; none revealed: all hidden
    one = noising.glance(torch.tensor([[5, 2]]), torch.tensor([[6, 2]]), keys[:1], ratio=0.5, pad=1, eos=2, mask=9)
    assert one.ratio.tolist() == [[1.0]]  # one word, wrong, floor(0.5) revealed: hidden
    empty = noising.glance(torch.tensor([[2, 1]]), torch.tensor([[2, 1]]), keys[:1], ratio=0.5, pad=1, eos=2, mask=9)
    assert empty.ratio.tolist() == [[0.0]]  # no words at all: no division by zero


def test_candidate_score_and_loss_weighting_names_are_checked_with_their_flags(tmp_path):
    from conftest import build_task_and_model, gmlm_loss
    from fairseq_gmlm.generation.rejecters import candidate_scores

    with pytest.raises(UsageError, match=r"^unknown --candidate-score 'max'; choose one of mean, sum$"):
        candidate_scores(torch.zeros(1, 2), torch.ones(1, 2, dtype=torch.bool), None, "max", 0.0)
    task, _, _ = build_task_and_model(tmp_path)
    with pytest.raises(UsageError, match=r"^unknown --loss-weighting 'elbo'; choose one of uniform, inverse-ratio$"):
        gmlm_loss(task, loss_weighting="elbo")
