import math

import pytest
import torch
import torch.nn.functional as F

from conftest import build_task_and_model, gmlm_loss
from fairseq_gmlm.criterions.gmlm_loss import token_losses


def make_sample(task, rows):
    """rows: lists of (source words, target words); builds a right-padded batch like LanguagePairDataset."""
    d = task.target_dictionary
    def encode(words):
        return [d.index(w) for w in words.split()] + [d.eos()]
    sources, targets = [encode(s) for s, _ in rows], [encode(t) for _, t in rows]
    def pad(seqs):
        width = max(map(len, seqs))
        return torch.tensor([s + [d.pad()] * (width - len(s)) for s in seqs])
    return {
        "id": torch.arange(len(rows)),
        "net_input": {"src_tokens": pad(sources), "src_lengths": torch.tensor([len(s) for s in sources])},
        "target": pad(targets),
        "ntokens": sum(map(len, targets)),
        "nsentences": len(rows),
    }


ROWS = [("w1 w2 w3", "w3 w2 w1"), ("w4 w5", "w5 w4"), ("w6 w7 w8 w9 w10", "w10 w9 w8 w7 w6")]


def loss_of(task, model, criterion, rows, ids, reduce=True):
    sample = make_sample(task, rows)
    sample["id"] = torch.tensor(ids)
    sample = task.corrupt(sample, update=3)
    return criterion(model, sample, reduce=reduce)


def test_padded_batch_loss_equals_sum_of_single_sentences(tmp_path):
    task, model, cfg = build_task_and_model(tmp_path, "--dropout", "0", "--train-stages", "2")
    criterion = task.build_criterion(cfg.criterion)
    model.eval()
    batch_loss, batch_size, _ = loss_of(task, model, criterion, ROWS, [0, 1, 2])
    singles = [loss_of(task, model, criterion, [row], [i]) for i, row in enumerate(ROWS)]
    assert torch.allclose(batch_loss, sum(s[0] for s in singles), rtol=1e-4)
    assert int(batch_size) == sum(int(s[1]) for s in singles)


def test_unreduced_losses_sum_to_the_reduced_loss(tmp_path):
    task, model, cfg = build_task_and_model(tmp_path, "--dropout", "0")
    criterion = task.build_criterion(cfg.criterion)
    reduced, _, _ = loss_of(task, model, criterion, ROWS, [0, 1, 2])
    per_sentence, _, _ = loss_of(task, model, criterion, ROWS, [0, 1, 2], reduce=False)
    assert per_sentence.shape == (3,)
    assert torch.allclose(per_sentence.sum(), reduced)


def test_zero_smoothing_equals_nll_and_empty_positions_keep_a_gradient():
    logits = torch.randn(2, 4, 7, requires_grad=True)
    target = torch.randint(0, 7, (2, 4))
    positions = torch.rand(2, 4) > 0.5
    loss, nll = token_losses(logits, target, positions, 0.0)
    expected = F.cross_entropy(logits.view(-1, 7), target.view(-1), reduction="none").view(2, 4) * positions
    assert torch.allclose(loss, expected, atol=1e-6) and torch.allclose(nll, expected, atol=1e-6)
    smoothed, _ = token_losses(logits, target, positions, 0.1)
    reference = F.cross_entropy(logits.view(-1, 7), target.view(-1), reduction="none", label_smoothing=0.1)
    assert torch.allclose(smoothed, reference.view(2, 4) * positions, atol=1e-6)
    empty, _ = token_losses(logits, target, torch.zeros(2, 4, dtype=torch.bool), 0.1)
    empty.sum().backward()
    assert logits.grad is not None and torch.count_nonzero(logits.grad) == 0


def test_ntokens_counts_every_real_target_token_while_sample_size_counts_the_scored_ones(tmp_path):
    task, model, cfg = build_task_and_model(tmp_path, "--dropout", "0", "--loss-positions", "noised",
                                            "--mask-ratio", "0.5")
    criterion = task.build_criterion(cfg.criterion)
    _, sample_size, logging_output = loss_of(task, model, criterion, ROWS, [0, 1, 2])
    real = make_sample(task, ROWS)["target"].ne(task.vocab.pad).sum()  # words and EOS: 4 + 3 + 6
    assert int(logging_output["ntokens"]) == int(real) == 13
    assert int(sample_size) == int(logging_output["sample_size"]) == int(logging_output["n_scored_first_stage"])
    assert int(sample_size) < int(real)  # only the noised words and EOS are scored


def test_inverse_ratio_weighting_scales_each_examples_words_by_one_over_its_noise_ratio():
    from fairseq_gmlm.criterions.gmlm_loss import MIN_RATIO, position_weights

    positions = torch.tensor([[True, False, True, True], [True, True, False, False]])
    eos = torch.tensor([[False, False, False, True], [False, True, False, False]])
    ratio = torch.tensor([[0.5], [0.01]])
    weights = position_weights("inverse-ratio", positions, eos, ratio)
    assert weights.tolist() == [[2.0, 0.0, 2.0, 1.0], [1 / MIN_RATIO, 1.0, 0.0, 0.0]]
    assert position_weights("uniform", positions, eos, ratio).tolist() == positions.float().tolist()


def test_inverse_ratio_loss_weights_each_scored_word_by_one_over_its_examples_noise_ratio(tmp_path):
    from fairseq_gmlm.criterions.gmlm_loss import MIN_RATIO

    task, model, cfg = build_task_and_model(tmp_path, "--dropout", "0", "--loss-weighting", "inverse-ratio",
                                            "--length-loss-factor", "0", "--label-smoothing", "0")
    criterion = task.build_criterion(cfg.criterion)
    model.eval()
    sample = task.corrupt(make_sample(task, ROWS), update=3)
    per_sentence, sample_size, _ = criterion(model, sample, reduce=False)

    corruption, target = sample["corruption"], sample["target"]
    logits = model(sample["net_input"]["src_tokens"], None, corruption.tokens).logits
    nll = F.cross_entropy(logits.transpose(1, 2), target, reduction="none")  # B x T
    eos = target.eq(task.vocab.eos)
    words = corruption.noised & ~eos
    weight = 1.0 / corruption.ratio.clamp(min=MIN_RATIO)  # B x 1
    expected = (nll * words * weight).sum(1) + (nll * eos).sum(1)
    assert torch.allclose(per_sentence, expected, rtol=1e-4)
    assert torch.isclose(sample_size, (words * weight).sum() + eos.sum())
    assert len(set(corruption.ratio.view(-1).tolist())) == len(ROWS)  # U(0, 1) per example: the weights differ


def test_one_stage_computes_logits_at_the_scored_positions_only_with_the_loss_and_gradients_of_every_one(tmp_path):
    task, model, cfg = build_task_and_model(tmp_path, "--dropout", "0", "--loss-positions", "noised",
                                            "--mask-ratio", "0.5")
    criterion = task.build_criterion(cfg.criterion)
    model.eval()
    sample = task.corrupt(make_sample(task, ROWS), update=3)
    projected, project = [], model.output_projection

    def recording_projection(hidden):
        projected.append(hidden.shape[:-1])
        return project(hidden)

    model.output_projection = recording_projection
    per_sentence, sample_size, logging_output = criterion(model, sample, reduce=False)
    per_sentence.sum().backward()
    gradient = model.embed_tokens.weight.grad.clone()
    model.zero_grad()

    corruption, target = sample["corruption"], sample["target"]
    scored = corruption.noised | target.eq(task.vocab.eos)  # B x T
    assert projected == [torch.Size([int(scored.sum())])] and int(scored.sum()) < int(target.ne(task.vocab.pad).sum())
    logits = model(sample["net_input"]["src_tokens"], None, corruption.tokens).logits  # every position: B x T x V
    loss, _ = token_losses(logits, target, scored, criterion.label_smoothing)
    length_loss = F.cross_entropy(model.length_logits(model.encode(sample["net_input"]["src_tokens"])),
                                  target.ne(task.vocab.pad).sum(1), reduction="none")
    expected = loss.sum(1) + criterion.length_loss_factor * length_loss
    assert torch.allclose(per_sentence, expected, rtol=1e-5)
    expected.sum().backward()
    assert torch.allclose(gradient, model.embed_tokens.weight.grad, rtol=1e-4, atol=1e-6)
    correct = logits.argmax(-1).eq(target)
    assert int(logging_output["n_correct"]) == int((correct & scored).sum())
    assert int(logging_output["n_masked_correct"]) == int((correct & corruption.masked).sum())
    assert int(sample_size) == int(scored.sum())


# ---- unrolled training (--train-stages) ---------------------------------------------------------------------

def run_stages(tmp_path, *flags, stages=3):
    """The criterion on ROWS with every word masked; returns the task, the sample, each decoder call's input
    and logits (stage order) and the sample size."""
    task, model, cfg = build_task_and_model(tmp_path, "--dropout", "0", "--train-stages", str(stages), "--mask-ratio",
                                            "1", "--random-token-prob", "0", "--keep-prob", "0", *flags)
    criterion = task.build_criterion(cfg.criterion)
    model.eval()
    calls, decode = [], model.decode

    def recording_decode(tokens, encoder_out, logit_positions=None):
        logits = decode(tokens, encoder_out, logit_positions)
        calls.append((tokens.clone(), logits.detach().float()))
        return logits

    model.decode = recording_decode
    sample = task.corrupt(make_sample(task, LONG_ROWS), update=3)
    _, sample_size, _ = criterion(model, sample)
    return task, sample, calls, sample_size


LONG_ROWS = ROWS + [("w11 w12 w13 w14 w15 w16 w17", "w17 w16 w15 w14 w13 w12 w11")]


def argmax_words(task, logits):
    """B x T argmax among the ids the model may predict, and the log-probability of each."""
    log_probs = F.log_softmax(logits, -1)
    allowed = torch.ones(logits.size(-1), dtype=torch.bool)
    allowed[task.vocab.never_predicted] = False
    best = log_probs.masked_fill(~allowed, float("-inf")).argmax(-1)
    return best, log_probs.gather(-1, best.unsqueeze(-1)).squeeze(-1)


@pytest.mark.parametrize("replacement", ["initial", "previous", "logits-sum"])
def test_each_stage_decodes_the_previous_stage_argmax_with_its_least_confident_word_replaced(tmp_path, replacement):
    task, sample, calls, _ = run_stages(tmp_path, "--train-rejecter", "bottom-k", "--train-reject-k", "1",
                                        "--train-replacement", replacement)
    assert len(calls) == 3
    initial = sample["corruption"].tokens
    assert torch.equal(calls[0][0], initial)
    summed = 0
    distinguishing = 0
    for stage in range(2):
        decoder_input, logits = calls[stage]
        summed = summed + F.log_softmax(logits, -1)
        best, confidence = argmax_words(task, logits)
        editable = decoder_input.ne(task.vocab.pad) & decoder_input.ne(task.vocab.eos)
        expected = torch.where(editable, best, decoder_input)
        lowest = confidence.masked_fill(~editable, float("inf")).argmin(1)  # B
        fills = {"initial": initial, "previous": decoder_input, "logits-sum": argmax_words(task, summed)[0]}
        rows = torch.arange(expected.size(0))
        distinguishing += int((fills[replacement][rows, lowest] != fills["initial"][rows, lowest]).sum()
                              if replacement != "initial" else (initial[rows, lowest] != best[rows, lowest]).sum())
        expected[rows, lowest] = fills[replacement][rows, lowest]
        assert torch.equal(calls[stage + 1][0], expected), f"stage {stage + 1} input"
    assert distinguishing > 0  # the replacement is visible: it differs from what another scheme would write


def test_linear_rejecter_masks_fewer_words_at_each_later_stage(tmp_path):
    task, sample, calls, sample_size = run_stages(tmp_path, "--train-rejecter", "linear",
                                                  "--train-replacement", "initial")
    words = sample["target"].ne(task.vocab.pad) & sample["target"].ne(task.vocab.eos)
    lengths = words.sum(1)  # 3, 2, 5, 7
    masked = [tokens.eq(task.vocab.mask).sum(1).tolist() for tokens, _ in calls]
    # 3 stages run like 3 passes: after stage s re-mask floor(L * (2 - s) / 3)
    assert masked == [lengths.tolist(), (lengths * 2 // 3).tolist(), (lengths // 3).tolist()]
    real = sample["target"].ne(task.vocab.pad).sum()
    assert int(sample_size) == 3 * int(real)  # every word is masked (so scored) in stage 0; later stages score all


def test_passthrough_stage_input_is_the_whole_previous_argmax(tmp_path):
    task, _, calls, _ = run_stages(tmp_path, "--train-rejecter", "passthrough", stages=2)
    decoder_input, logits = calls[0]
    editable = decoder_input.ne(task.vocab.pad) & decoder_input.ne(task.vocab.eos)
    assert torch.equal(calls[1][0], torch.where(editable, argmax_words(task, logits)[0], decoder_input))


# ---- --loss-positions and --length-loss-factor -------------------------------------------------------------

@pytest.mark.parametrize("kind", ["all", "noised", "masked"])
def test_loss_positions_choose_which_target_tokens_get_a_gradient(tmp_path, kind):
    task, model, cfg = build_task_and_model(tmp_path, "--dropout", "0", "--loss-positions", kind, "--mask-ratio",
                                            "0.6", "--random-token-prob", "0.3", "--keep-prob", "0.3")
    criterion = task.build_criterion(cfg.criterion)
    sample = task.corrupt(make_sample(task, LONG_ROWS), update=3)
    corruption, target = sample["corruption"], sample["target"]
    real, eos = target.ne(task.vocab.pad), target.eq(task.vocab.eos)
    assert (corruption.masked != corruption.noised).any() and (corruption.noised != (real & ~eos)).any()
    captured = {}

    def keep(module, inputs, output):
        output.retain_grad()
        captured["hidden"] = output

    model.decoder.register_forward_hook(keep)  # B x T x C, before the output projection (a position's own logits)
    loss, sample_size, logging_output = criterion(model, sample)
    loss.backward()
    scored = {"all": real, "noised": corruption.noised | eos, "masked": corruption.masked | eos}[kind]
    assert torch.equal(captured["hidden"].grad.abs().sum(-1) > 0, scored)
    assert int(sample_size) == int(logging_output["n_scored_first_stage"]) == int(scored.sum())


def test_length_loss_factor_weights_each_sentence_length_cross_entropy(tmp_path):
    losses = {}
    for factor in (0.0, 2.5):
        task, model, cfg = build_task_and_model(tmp_path / str(factor), "--dropout", "0", "--length-loss-factor",
                                                str(factor))
        model.eval()
        criterion = task.build_criterion(cfg.criterion)
        sample = task.corrupt(make_sample(task, ROWS), update=3)
        per_sentence, _, logging_output = criterion(model, sample, reduce=False)
        losses[factor] = per_sentence.detach()
    net_input = sample["net_input"]
    length_logits = model(net_input["src_tokens"], net_input["src_lengths"], sample["corruption"].tokens).length_logits
    lengths = sample["target"].ne(task.vocab.pad).sum(1)  # words and EOS
    expected = F.cross_entropy(length_logits.detach(), lengths, reduction="none")
    torch.testing.assert_close(losses[2.5] - losses[0.0], 2.5 * expected, rtol=1e-4, atol=1e-4)
    assert float(logging_output["length_loss"]) == pytest.approx(float(expected.sum()), rel=1e-5)


# ---- logged metrics ----------------------------------------------------------------------------------------

def reduced(logging_outputs):
    from fairseq.logging import metrics

    from fairseq_gmlm.criterions.gmlm_loss import GMLMLoss

    with metrics.aggregate(new_root=True) as aggregator:
        GMLMLoss.reduce_metrics(logging_outputs)
        return aggregator.get_smoothed_values()


def test_logged_metrics_are_ratios_of_the_summed_logging_outputs():
    from fairseq_gmlm.criterions.gmlm_loss import GMLMLoss

    assert GMLMLoss.logging_outputs_can_be_summed()
    logs = [
        {"loss": 6.0, "nll_loss": 4.0, "length_loss": 3.0, "sample_size": 3, "nsentences": 2, "n_correct": 1,
         "n_scored_first_stage": 3, "n_masked": 2, "n_masked_correct": 1},
        {"loss": 2.0, "nll_loss": 2.0, "length_loss": 1.0, "sample_size": 5, "nsentences": 3, "n_correct": 3,
         "n_scored_first_stage": 2, "n_masked": 3, "n_masked_correct": 3},
    ]
    values = reduced(logs)
    assert values["loss"] == pytest.approx(8.0 / 8 / math.log(2), abs=1e-3)  # per scored token, in bits
    assert values["nll_loss"] == pytest.approx(6.0 / 8 / math.log(2), abs=1e-3)
    assert values["length_loss"] == pytest.approx(4.0 / 5 / math.log(2), abs=1e-3)  # per sentence
    assert values["acc"] == pytest.approx(100 * 4 / 5, abs=0.01)
    assert values["mask_acc"] == pytest.approx(100 * 4 / 5, abs=0.01)


def test_logged_metrics_of_a_batch_with_nothing_scored_are_zero_not_an_error():
    empty = {"loss": 0.0, "nll_loss": 0.0, "length_loss": 0.0, "sample_size": 0, "nsentences": 0, "n_correct": 0,
             "n_scored_first_stage": 0, "n_masked": 0, "n_masked_correct": 0}
    assert {key: value for key, value in reduced([empty]).items()} == {
        "loss": 0.0, "nll_loss": 0.0, "length_loss": 0.0, "acc": 0.0, "mask_acc": 0.0}
    one = dict(empty, loss=1.0, nll_loss=1.0, length_loss=1.0, sample_size=1, nsentences=1, n_correct=1,
               n_scored_first_stage=1, n_masked=1, n_masked_correct=1)
    values = reduced([one])
    assert values["loss"] == values["nll_loss"] == values["length_loss"] == pytest.approx(1 / math.log(2), abs=1e-3)
    assert values["acc"] == values["mask_acc"] == 100.0


def test_logged_losses_of_several_reductions_average_per_scored_token_and_per_sentence():
    from fairseq.logging import metrics

    from fairseq_gmlm.criterions.gmlm_loss import GMLMLoss

    first = {"loss": 6.0, "nll_loss": 3.0, "length_loss": 2.0, "sample_size": 3, "nsentences": 1}
    second = {"loss": 4.0, "nll_loss": 3.0, "length_loss": 9.0, "sample_size": 1, "nsentences": 3}
    with metrics.aggregate(new_root=True) as aggregator:  # as fairseq-train between two log lines
        GMLMLoss.reduce_metrics([first])
        GMLMLoss.reduce_metrics([second])
        values = aggregator.get_smoothed_values()
    # weighted by what each reduction scored (2 and 4 bits per token: 2.5, where a plain mean would give 3)
    assert values["loss"] == pytest.approx(10.0 / 4 / math.log(2), abs=1e-3)
    assert values["nll_loss"] == pytest.approx(6.0 / 4 / math.log(2), abs=1e-3)
    assert values["length_loss"] == pytest.approx(11.0 / 4 / math.log(2), abs=1e-3)


def test_unknown_loss_positions_are_refused_with_the_flag_and_the_choices():
    from fairseq_gmlm.criterions.gmlm_loss import scored_positions
    from fairseq_gmlm.errors import UsageError

    real = torch.ones(1, 3, dtype=torch.bool)
    with pytest.raises(UsageError, match=r"^unknown --loss-positions 'eos'; choose one of all, noised, masked$"):
        scored_positions("eos", real, None, real)


def test_logging_output_sums_the_losses_of_every_stage_and_counts_correct_words(tmp_path):
    task, sample, calls, sample_size = run_stages(tmp_path, "--train-rejecter", "bottom-k", stages=2)
    task2, model, cfg = build_task_and_model(tmp_path / "again", "--dropout", "0", "--train-stages", "2",
                                             "--mask-ratio", "1", "--random-token-prob", "0", "--keep-prob", "0",
                                             "--train-rejecter", "bottom-k")
    model.eval()
    total, _, logging_output = task2.build_criterion(cfg.criterion)(model, sample)
    target, corruption = sample["target"], sample["corruption"]
    real, eos = target.ne(task.vocab.pad), target.eq(task.vocab.eos)
    first = corruption.masked | eos  # --loss-positions noised: every word is noised (and masked) here
    nll = [-F.log_softmax(logits, -1).gather(-1, target.unsqueeze(-1)).squeeze(-1) for _, logits in calls]
    expected_nll = (nll[0] * first).sum() + (nll[1] * real).sum()
    assert float(logging_output["loss"]) == pytest.approx(float(total), rel=1e-6)
    assert float(logging_output["nll_loss"]) == pytest.approx(float(expected_nll), rel=1e-4)
    smoothed = [0.9 * n + 0.1 * -F.log_softmax(logits, -1).mean(-1) for n, (_, logits) in zip(nll, calls)]
    length_loss = float(logging_output["length_loss"])
    expected_total = (smoothed[0] * first).sum() + (smoothed[1] * real).sum() + 0.1 * length_loss
    assert float(total) == pytest.approx(float(expected_total), rel=1e-4)
    predicted = calls[0][1].argmax(-1)
    assert int(logging_output["n_correct"]) == int((predicted.eq(target) & first).sum())
    assert int(logging_output["n_masked"]) == int(corruption.masked.sum()) == int((real & ~eos).sum())
    assert int(logging_output["n_masked_correct"]) == int((predicted.eq(target) & corruption.masked).sum())
    assert logging_output["nsentences"] == len(LONG_ROWS) and int(logging_output["ntokens"]) == int(real.sum())


def test_unrolled_training_ignores_the_generation_only_restarts_option(tmp_path):
    task, model, cfg = build_task_and_model(tmp_path, "--train-stages", "2", "--restarts", "2")
    loss, _, _ = task.build_criterion(cfg.criterion)(model, task.corrupt(make_sample(task, ROWS), update=1))
    assert torch.isfinite(loss)


def test_train_stages_and_label_smoothing_out_of_range_are_refused_with_the_flag_name(tmp_path):
    from fairseq_gmlm.errors import UsageError

    task, _, _ = build_task_and_model(tmp_path)
    with pytest.raises(UsageError, match="^--train-stages must be >= 1, got 0$"):
        gmlm_loss(task, train_stages=0)
    for smoothing in (1.0, -0.1):
        with pytest.raises(UsageError, match=rf"^--label-smoothing must be in \[0, 1\), got {smoothing}$"):
            gmlm_loss(task, label_smoothing=smoothing)
    assert gmlm_loss(task, label_smoothing=0.0).label_smoothing == 0.0  # zero is plain NLL


def test_the_unrolled_stages_follow_the_criterions_train_options_not_the_tasks_decoding_flags(tmp_path):
    def loss(*flags):
        task, model, cfg = build_task_and_model(tmp_path / "-".join(flags or ["defaults"]), "--dropout", "0",
                                                "--train-stages", "3", *flags)
        model.eval()
        return float(loss_of(task, model, task.build_criterion(cfg.criterion), LONG_ROWS, [0, 1, 2, 3])[0])

    default = loss()
    assert loss("--rejecter", "passthrough", "--replacement", "previous", "--stutter-remask", "on") == default
    assert loss("--train-rejecter", "passthrough") != pytest.approx(default, rel=1e-6)
    assert loss("--train-replacement", "previous") != pytest.approx(default, rel=1e-6)


def test_the_train_options_are_checked_when_the_criterion_is_built_naming_their_flags(tmp_path):
    from fairseq_gmlm.errors import UsageError

    task, _, _ = build_task_and_model(tmp_path)
    for changes, message in (({"train_rejecter": "best"}, "^unknown --train-rejecter 'best'; choose one of "),
                             ({"train_reject_k": -1}, "^--train-reject-k must be >= 0, got -1$"),
                             ({"train_reject_fraction": 2.0}, r"^--train-reject-fraction must be in \[0, 1\]"),
                             ({"train_reject_threshold": 0.0}, r"^--train-reject-threshold must be in \(0, 1\]"),
                             ({"train_stutter_remask": "yes"},
                              "^unknown --train-stutter-remask 'yes'; choose one of first, on, off$"),
                             ({"train_rejecter": "confidence", "train_replacement": "previous"},
                              "^--train-rejecter confidence re-opens .* use --train-replacement initial")):
        with pytest.raises(UsageError, match=message):
            gmlm_loss(task, **changes)


def test_a_batch_without_the_corruption_is_refused_naming_the_task(tmp_path):
    from fairseq_gmlm.errors import UsageError

    task, model, cfg = build_task_and_model(tmp_path)
    with pytest.raises(UsageError, match="^gmlm_loss needs the corrupted target that --task translation_gmlm adds to "
                                         "each batch$"):
        task.build_criterion(cfg.criterion)(model, make_sample(task, ROWS))


def test_accuracies_are_logged_in_percent_with_two_decimals_and_empty_logging_outputs_add_nothing():
    log = {"loss": 1.0, "nll_loss": 1.0, "length_loss": 1.0, "sample_size": 3, "nsentences": 1, "n_correct": 1,
           "n_scored_first_stage": 3, "n_masked": 6, "n_masked_correct": 4}
    values = reduced([log, {}])
    assert values["acc"] == 33.33 and values["mask_acc"] == 66.67
    assert values == reduced([log])


def test_correct_words_are_counted_at_the_scored_positions_from_the_argmax(tmp_path):
    task, model, cfg = build_task_and_model(tmp_path, "--dropout", "0", "--loss-positions", "masked", "--mask-ratio",
                                            "0.6", "--random-token-prob", "0.3", "--keep-prob", "0.3")
    sample = task.corrupt(make_sample(task, LONG_ROWS), update=3)
    target, corruption = sample["target"], sample["corruption"]
    right = corruption.masked | (corruption.noised & ~corruption.masked)  # the masked words and some unscored ones
    right.view(-1)[corruption.masked.view(-1).nonzero()[0]] = False  # and one masked word wrong
    answer = torch.where(right, target, torch.full_like(target, task.target_dictionary.index("w20")))
    vocab_size = len(task.target_dictionary)
    model.decode = lambda tokens, encoder_out, positions=None: F.one_hot(
        answer if positions is None else answer[positions], vocab_size).float() * 5  # P x V: the scored positions
    _, _, logging_output = task.build_criterion(cfg.criterion)(model, sample)
    scored = corruption.masked | target.eq(task.vocab.eos)
    assert int(logging_output["n_correct"]) == int((right & scored).sum()) > 0
    assert int(logging_output["n_masked_correct"]) == int((right & corruption.masked).sum()) > 0


def test_neighbour_copies_reach_the_decoder_input_and_are_scored(tmp_path):
    task, model, cfg = build_task_and_model(tmp_path, "--dropout", "0", "--mask-ratio", "1", "--random-token-prob",
                                            "0", "--keep-prob", "0", "--neighbour-copy-prob", "1")
    criterion = task.build_criterion(cfg.criterion)
    sample = task.corrupt(make_sample(task, LONG_ROWS), update=3)
    tokens, target = sample["net_input"]["prev_output_tokens"], sample["target"]
    words = target.ne(task.vocab.pad) & target.ne(task.vocab.eos)
    neighbours = tokens.eq(target.roll(1, 1)) | tokens.eq(target.roll(-1, 1))
    assert neighbours[words].all() and not tokens.eq(task.vocab.mask).any()  # a stutter at every word
    assert torch.equal(sample["corruption"].noised, words)  # ... and every one is scored
    loss, sample_size, _ = criterion(model, sample)
    assert int(sample_size) == int(words.sum() + target.eq(task.vocab.eos).sum()) and loss.item() > 0


def test_neighbour_copies_out_of_range_or_beside_glancing_are_refused_naming_the_flags(tmp_path):
    from fairseq_gmlm.errors import UsageError

    with pytest.raises(UsageError, match=r"^--neighbour-copy-prob must be in \[0, 1\], got 1.5$"):
        build_task_and_model(tmp_path, "--neighbour-copy-prob", "1.5")
    with pytest.raises(UsageError, match="plus --neighbour-copy-prob must not exceed 1$"):
        build_task_and_model(tmp_path, "--neighbour-copy-prob", "0.9")  # with the default 0.1 + 0.1
    with pytest.raises(UsageError, match="^--glancing-ratio replaces the random corruption"):
        build_task_and_model(tmp_path, "--neighbour-copy-prob", "0.2", "--glancing-ratio", "0.5")
