"""Invariants of the refinement generator, on an untrained tiny model (they must hold for any weights)."""

from argparse import Namespace

import pytest
import torch

from conftest import PLUGIN, build_task_and_model, decoding_options
from fairseq_gmlm.errors import UsageError
from fairseq_gmlm.generation.refinement import (GMLMGenerator, Vocabulary, candidate_lengths, choose, length_candidates,
                                               length_groups)
from fairseq_gmlm.generation.rejecters import linear_schedule_count
from fairseq_gmlm.models.gmlm_t5 import EncoderOut
from fairseq_gmlm.models.length_head import expected_lengths, top_lengths
from test_gmlm_loss import make_sample

SOURCES = [("w1 w2 w3", "w3"), ("w4 w5 w6 w7 w8 w9", "w9"), ("w10", "w10"), ("w11 w12", "w12"), ("w2 w2 w2 w2", "w2")]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    task, model, _ = build_task_and_model(tmp_path_factory.mktemp("gen"))
    model.eval()
    return task, model, make_sample(task, SOURCES)


def generate(task, models, sample, seed=0, **flags):
    args = Namespace(iter_decode_max_iter=flags.pop("max_iter", 4), max_len_a=1.0, max_len_b=5, **flags)
    torch.manual_seed(seed)
    return task.inference_step(task.build_generator(models, args), models, sample)


def test_outputs_never_hold_mask_and_come_one_per_input_in_order(setup):
    task, model, sample = setup
    for init in ("mask", "random"):
        for replacement in ("previous", "initial", "logits-sum"):
            hypos = generate(task, [model], sample, decoder_init=init, rejecter="linear", replacement=replacement)
            assert len(hypos) == len(SOURCES)
            for hypo in hypos:
                tokens = hypo[0]["tokens"]
                assert task.vocab.mask not in tokens.tolist()
                assert tokens[-1] == task.vocab.eos and task.vocab.eos not in tokens[:-1].tolist()
                assert len(hypo[0]["positional_scores"]) == len(tokens)


@pytest.mark.parametrize("choice", [None, "mean", "mode"])  # None: the task's default, the mean
def test_output_length_equals_the_chosen_candidate_length_without_stutter_removal(setup, choice):
    task, model, sample = setup
    encoder_out = model.encode(sample["net_input"]["src_tokens"])
    length_log_probs = torch.log_softmax(model.length_logits(encoder_out), -1)
    flags = {} if choice is None else {"length_choice": choice}
    hypos = generate(task, [model], sample, stutter_remask=False, iter_decode_with_beam=1, **flags)
    max_length = sample["net_input"]["src_tokens"].ne(task.vocab.pad).sum(1) + 5
    if choice == "mode":
        expected = top_lengths(length_log_probs, 1, max_length)[:, 0]
    else:
        expected = expected_lengths(length_log_probs, max_length)
    assert [len(h[0]["tokens"]) for h in hypos] == expected.tolist()
    assert not torch.equal(expected_lengths(length_log_probs, max_length),
                           top_lengths(length_log_probs, 1, max_length)[:, 0])  # so the choices are told apart


def test_length_beam_returns_one_of_the_top_k_lengths(setup):
    task, model, sample = setup
    encoder_out = model.encode(sample["net_input"]["src_tokens"])
    source_length = sample["net_input"]["src_tokens"].ne(task.vocab.pad).sum(1)
    top3 = top_lengths(torch.log_softmax(model.length_logits(encoder_out), -1), 3, source_length + 5)
    hypos = generate(task, [model], sample, stutter_remask=False, iter_decode_with_beam=3, restarts=2,
                     decoder_init="random", length_choice="mode")
    for row, hypo in zip(top3.tolist(), hypos):
        assert len(hypo[0]["tokens"]) in row


def test_history_length_equals_passes_used_and_passes_are_bounded(setup):
    task, model, sample = setup
    for max_iter in (0, 2, 4):
        hypos = generate(task, [model], sample, max_iter=max_iter, retain_iter_history=True)
        for hypo in hypos:
            assert 1 <= hypo[0]["steps"] <= max_iter + 1
            assert len(hypo[0]["history"]) == hypo[0]["steps"]
            assert torch.equal(hypo[0]["history"][-1]["tokens"][-1], hypo[0]["tokens"][-1])
    forced = generate(task, [model], sample, max_iter=3, iter_decode_force_max_iter=True)
    assert all(h[0]["steps"] == 4 for h in forced)


def test_repredict_open_changes_only_the_words_a_pass_re_masked(setup):
    """--repredict open (Mask-Predict's rule): between passes only the re-masked words can change, at most as many
    as the linear schedule re-masks, and with nothing rejected (passthrough) nothing changes after the first pass.
    Under all (PaDIR's) every word is predicted again, and with passthrough words do change."""
    task, model, sample = setup
    changes = {}
    for repredict, rejecter in (("open", "linear"), ("open", "passthrough"), ("all", "passthrough")):
        changes[repredict, rejecter] = 0
        for hypo in generate(task, [model], sample, max_iter=4, retain_iter_history=True, repredict=repredict,
                             rejecter=rejecter, iter_decode_force_max_iter=True):
            history = hypo[0]["history"]
            words = torch.tensor(len(history[0]["tokens"]) - 1)  # the canvas without EOS
            for step, (before, after) in enumerate(zip(history, history[1:])):
                changed = int(after["tokens"].ne(before["tokens"]).sum())
                assert rejecter == "passthrough" or changed <= int(linear_schedule_count(words, step, 4))
                changes[repredict, rejecter] += changed
    assert changes["open", "passthrough"] == 0
    assert changes["all", "passthrough"] > 0 and changes["open", "linear"] > 0


def test_same_seed_gives_the_same_output_also_when_sampling(setup):
    task, model, sample = setup
    for flags in ({"decoder_init": "random"}, {"sampling": True, "temperature": 1.5, "sampling_topk": 5}):
        first = generate(task, [model], sample, seed=7, **flags)
        second = generate(task, [model], sample, seed=7, **flags)
        assert [h[0]["tokens"].tolist() for h in first] == [h[0]["tokens"].tolist() for h in second]


def test_ensemble_of_two_models_decodes_and_an_ensemble_of_one_model_twice_matches_it(setup, tmp_path):
    task, model, sample = setup
    _, other, _ = build_task_and_model(tmp_path, seed=5)
    other.eval()
    single = generate(task, [model], sample)
    doubled = generate(task, [model, model], sample)
    assert [h[0]["tokens"].tolist() for h in single] == [h[0]["tokens"].tolist() for h in doubled]
    mixed = generate(task, [model, other], sample)
    assert len(mixed) == len(SOURCES)


def test_bad_decoding_flags_are_rejected_with_the_flag_name(setup):
    task, model, sample = setup
    with pytest.raises(ValueError, match="--iter-decode-max-iter"):
        task.build_generator([model], Namespace(iter_decode_max_iter=-1))
    with pytest.raises(ValueError, match="--iter-decode-with-beam"):
        task.build_generator([model], Namespace(iter_decode_with_beam=0))


def test_candidate_lengths_shift_each_length_by_the_odd_offsets_and_clamp_to_the_allowed_range():
    top = torch.tensor([[5, 9], [2, 3]])  # B x K
    max_length = torch.tensor([9, 20])
    assert candidate_lengths(top, 1, 1, max_length).tolist() == top.tolist()
    assert candidate_lengths(top, 3, 1, max_length).tolist() == [[4, 5, 6, 8, 9, 9], [2, 2, 3, 2, 3, 4]]
    both = [3, 3, 4, 4, 5, 5, 6, 6, 7, 7] + [7, 7, 8, 8, 9, 9, 10, 10, 11, 11]  # 5 +-2, then 9 +-2, each twice
    assert candidate_lengths(top, 5, 2, 100)[0].tolist() == both


def test_length_offsets_reach_the_generator_and_decode_every_offset_length(setup, monkeypatch):
    task, model, sample = setup
    decoded = []
    refine = GMLMGenerator.refine

    def spy(self, models, encoder_outs, initial):
        decoded.append(initial.ne(task.vocab.pad).sum(1))  # N candidate lengths
        return refine(self, models, encoder_outs, initial)

    monkeypatch.setattr(GMLMGenerator, "refine", spy)
    assert task.refinement_options().length_offsets == 1
    hypos = generate(task, [model], sample, stutter_remask=False, iter_decode_with_beam=2, length_offsets=3)
    encoder_out = model.encode(sample["net_input"]["src_tokens"])
    max_length = sample["net_input"]["src_tokens"].ne(task.vocab.pad).sum(1) + 5  # --max-len-a 1 --max-len-b 5
    top = length_candidates(torch.log_softmax(model.length_logits(encoder_out), -1), 2, max_length, "mean")  # B x 2
    expected = candidate_lengths(top, 3, 1, max_length)  # B x 6
    assert decoded[0].view(len(SOURCES), 6).tolist() == expected.tolist()
    for row, hypo in zip(expected.tolist(), hypos):
        assert len(hypo[0]["tokens"]) in row


def test_the_decoding_defaults_are_those_of_a_plain_fairseq_generate_command_line(setup):
    from fairseq import options

    task, _, _ = setup
    parser = options.get_generation_parser(default_task="translation_gmlm")
    args = options.parse_args_and_arch(parser, [task.cfg.data, "--user-dir", PLUGIN, "--task", "translation_gmlm"])
    assert task.refinement_options(args) == decoding_options().check()


def test_even_length_offsets_are_refused():
    for offsets in (0, 2):
        with pytest.raises(UsageError, match="--length-offsets must be an odd number"):
            decoding_options(length_offsets=offsets).check()


def test_restarts_with_mask_init_and_argmax_are_refused_as_identical_copies(setup):
    task, model, _ = setup
    for flags in ({}, {"decoder_init": "mask"}):
        with pytest.raises(UsageError, match=r"--restarts 2 .*--decoder-init random.*--sampling"):
            task.build_generator([model], Namespace(restarts=2, **flags))
    assert decoding_options(restarts=2, decoder_init="random").check().restarts == 2
    assert decoding_options(restarts=2, sampling=True).check().restarts == 2
    assert decoding_options(restarts=1).check().restarts == 1


def test_projected_memory_gives_the_same_logits_also_after_selecting_candidates(setup):
    task, model, sample = setup
    encoder_out = model.encode(sample["net_input"]["src_tokens"])
    projected = model.project_memory(encoder_out)
    assert len(projected.memory) == len(model.decoder.blocks)
    order = torch.tensor([2, 0, 0, 4])  # candidates laid out per sentence, some sentences twice
    tokens = torch.full((4, 6), task.vocab.mask).index_fill(1, torch.tensor([5]), task.vocab.eos)
    expected = model.decode(tokens, encoder_out.index_select(order))
    torch.testing.assert_close(model.decode(tokens, projected.index_select(order)), expected)


def test_confidence_rejecter_adapts_the_passes_per_sentence_within_the_limit(setup):
    task, model, sample = setup
    low = generate(task, [model], sample, max_iter=9, rejecter="confidence", reject_threshold=0.01)
    high = generate(task, [model], sample, max_iter=9, rejecter="confidence", reject_threshold=0.999)
    low_steps, high_steps = [h[0]["steps"] for h in low], [h[0]["steps"] for h in high]
    assert all(1 <= s <= 10 for s in low_steps + high_steps)
    # an untrained model is never 99.9% sure: each pass closes one position, so a sentence takes as many
    # passes as it has words (up to the limit); at 1% nearly everything is kept at once
    lengths = [len(h[0]["tokens"]) - 1 for h in high]
    assert high_steps == [min(n, 10) for n in lengths]
    assert sum(low_steps) < sum(high_steps)


@pytest.mark.parametrize("flags", [
    {"rejecter": "confidence", "reject_threshold": 0.999, "replacement": "initial"},
    {"rejecter": "confidence", "reject_threshold": 0.999, "replacement": "initial", "repredict": "open"},
    {"rejecter": "confidence", "reject_threshold": 0.999, "replacement": "initial", "stop_rule": "prediction",
     "retain_iter_history": True},
])
def test_sentences_that_stop_at_different_passes_decode_in_a_batch_as_they_do_alone(setup, flags, monkeypatch):
    # finished candidates leave the batch and the others go on with their rows of the carried state: each
    # sentence's words, scores, passes and history must be those of decoding it alone
    task, model, sample = setup
    length_logits = model.length_logits

    def source_length(encoder_out):  # each sentence's target as long as its source: 1 to 6 words
        lengths = (~encoder_out.padding_mask).sum(1) - 1  # B, the source with EOS (not <length>)
        return torch.nn.functional.one_hot(lengths, length_logits(encoder_out).size(1)).float() * 30

    monkeypatch.setattr(model, "length_logits", source_length)
    batch = generate(task, [model], sample, max_iter=9, **flags)
    # an untrained model is never 99.9% sure: a sentence takes a pass per word, so all five stop at different passes
    assert sorted(h[0]["steps"] for h in batch) == [1, 2, 3, 4, 6]
    for i, hypo in enumerate(batch):
        alone = generate(task, [model], make_sample(task, [SOURCES[i]]), max_iter=9, **flags)[0][0]
        assert hypo[0]["tokens"].tolist() == alone["tokens"].tolist(), SOURCES[i]
        assert hypo[0]["steps"] == alone["steps"]
        torch.testing.assert_close(hypo[0]["positional_scores"], alone["positional_scores"], atol=1e-5, rtol=0)
        if flags.get("retain_iter_history"):
            assert len(hypo[0]["history"]) == hypo[0]["steps"]
            for step, (ours, theirs) in enumerate(zip(hypo[0]["history"], alone["history"])):
                assert ours["tokens"].tolist() == theirs["tokens"].tolist(), (SOURCES[i], step)


def test_confidence_rejecter_needs_re_masking():
    with pytest.raises(UsageError, match="--rejecter confidence .* --replacement initial"):
        decoding_options(rejecter="confidence", replacement="previous").check()
    with pytest.raises(UsageError, match="--rejecter random .* --replacement initial"):
        decoding_options(rejecter="random", replacement="logits-sum").check()


def test_decoding_options_are_checked_when_the_generator_is_built(setup):
    task, model, _ = setup
    for flags, message in (({"reject_fraction": 1.5}, "--reject-fraction"), ({"reject_k": -1}, "--reject-k"),
                           ({"reject_threshold": 0.0}, "--reject-threshold"), ({"stop_rule": "never"}, "--stop-rule"),
                           ({"candidate_score": "max"}, "--candidate-score")):
        with pytest.raises(UsageError, match=message):
            task.build_generator([model], Namespace(iter_decode_max_iter=4, **flags))


def test_stop_rules_differ_where_a_pass_repeats_its_prediction_but_masks_remain(setup):
    task, model, _ = setup
    vocab = task.vocab
    words = torch.tensor([[5, 6, 7, vocab.eos]])
    masked = torch.tensor([[vocab.mask, 6, vocab.mask, vocab.eos]])
    canvas = torch.tensor([[vocab.mask, vocab.mask, vocab.mask, vocab.eos]])
    for rule, expected in (("prediction", True), ("input", False)):
        generator = GMLMGenerator(vocab, decoding_options(stop_rule=rule))
        # pass 2 predicted what pass 1 did, yet the linear schedule re-masks two of them for pass 3
        assert generator.finished(2, words, words, masked, masked.clone().index_fill_(1, torch.tensor([1]), 7),
                                  canvas).item() is expected
    generator = GMLMGenerator(vocab, decoding_options(stop_rule="input"))
    assert generator.finished(2, words, words, masked, masked, canvas).item() is True


def test_length_beam_returns_the_best_scoring_candidate(setup):
    task, model, sample = setup
    one = generate(task, [model], sample, iter_decode_with_beam=1, stutter_remask=False)
    three = generate(task, [model], sample, iter_decode_with_beam=3, stutter_remask=False)
    pairs = [(float(a[0]["score"]), float(b[0]["score"])) for a, b in zip(one, three)]
    # the top length is one of the three candidates and refines the same way, so the best of three scores at
    # least as well; on an untrained model some other length wins somewhere
    assert all(best >= single - 1e-4 for single, best in pairs)
    assert any(best > single + 1e-4 for single, best in pairs)
    for kind in ("mean", "sum"):
        hypos = generate(task, [model], sample, iter_decode_with_beam=3, stutter_remask=False, candidate_score=kind)
        single = generate(task, [model], sample, iter_decode_with_beam=1, stutter_remask=False, candidate_score=kind)
        assert all(float(h[0]["score"]) >= float(s[0]["score"]) - 1e-4 for h, s in zip(hypos, single))


def test_expected_length_is_the_rounded_mean_within_the_allowed_lengths():
    from fairseq_gmlm.models.length_head import expected_lengths

    probs = torch.zeros(2, 12)
    probs[0, [3, 10]] = torch.tensor([0.6, 0.4])  # mode 3, mean 5.8
    probs[1, [1, 4, 11]] = torch.tensor([0.5, 0.3, 0.2])  # length 1 is never proposed; 11 only within the limit
    log_probs = probs.clamp(min=1e-12).log()
    assert expected_lengths(log_probs, 12).tolist() == [6, round(0.6 * 4 + 0.4 * 11)]  # renormalised: 6.8
    assert expected_lengths(log_probs, torch.tensor([12, 9])).tolist() == [6, 4]  # per-sentence limits
    assert top_lengths(log_probs, 1, 12)[:, 0].tolist() == [3, 4]


def test_mean_length_choice_decodes_the_rounded_mean_then_the_most_likely_lengths(setup):
    from fairseq_gmlm.models.length_head import expected_lengths

    task, model, sample = setup
    encoder_out = model.encode(sample["net_input"]["src_tokens"])
    length_log_probs = torch.log_softmax(model.length_logits(encoder_out), -1)
    limit = sample["net_input"]["src_tokens"].ne(task.vocab.pad).sum(1) + 5
    hypos = generate(task, [model], sample, stutter_remask=False, length_choice="mean")
    mean = expected_lengths(length_log_probs, limit)
    assert [len(h[0]["tokens"]) for h in hypos] == mean.tolist()
    assert mean.tolist() != top_lengths(length_log_probs, 1, limit)[:, 0].tolist()  # untrained: a flat distribution
    beam = generate(task, [model], sample, stutter_remask=False, length_choice="mean", iter_decode_with_beam=3)
    top2 = top_lengths(length_log_probs, 2, limit)
    for row, hypo in enumerate(beam):
        assert len(hypo[0]["tokens"]) in [int(mean[row]), *top2[row].tolist()]


# ---- scripted models: decoders whose outputs are known ------------------------------------------------------

class ScriptedModel(torch.nn.Module):
    """A stand-in for GMLMT5Model with the interface GMLMGenerator uses: the length head always predicts
    LENGTHS (best first) and ``decode`` returns ``logits_fn(prev_output_tokens, src_tokens)``."""

    max_target_positions = 40

    def __init__(self, vocab_size, lengths, logits_fn):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(()))  # one float parameter, for the autocast choice
        self.vocab_size, self.lengths, self.logits_fn = vocab_size, lengths, logits_fn

    def max_positions(self):
        return (100, self.max_target_positions)

    def encode(self, src_tokens, src_lengths=None):
        return EncoderOut(src_tokens[:, :, None].float(), src_tokens.eq(1))

    def project_memory(self, encoder_out):
        return encoder_out

    def length_logits(self, encoder_out):
        logits = torch.full((encoder_out.out.size(0), self.max_target_positions + 1), -30.0)
        for rank, length in enumerate(self.lengths):
            logits[:, length] = -float(rank)
        return logits

    def decode(self, prev_output_tokens, encoder_out):
        return self.logits_fn(prev_output_tokens, encoder_out.out[:, :, 0].long())


def one_hot_logits(words: torch.Tensor, vocab_size: int, margin: float = 5.0) -> torch.Tensor:
    """N x T x V logits preferring WORDS (N x T) by MARGIN."""
    return torch.nn.functional.one_hot(words, vocab_size).float() * margin


def test_stutter_remask_drops_repeats_from_the_generator_output(setup):
    task, _, sample = setup
    word = task.target_dictionary.index("w5")
    vocab_size = len(task.target_dictionary)
    always = ScriptedModel(vocab_size, [6], lambda tokens, src: one_hot_logits(torch.full_like(tokens, word), vocab_size))
    eos = task.vocab.eos
    plain = generate(task, [always], sample, stutter_remask=False)
    dropped = generate(task, [always], sample, stutter_remask=True)
    assert all(h[0]["tokens"].tolist() == [word] * 5 + [eos] for h in plain)
    assert all(h[0]["tokens"].tolist() == [word, eos] for h in dropped)
    assert all(len(h[0]["positional_scores"]) == 2 for h in dropped)


def test_stutter_first_gives_the_less_confident_copy_its_next_best_word_and_keeps_the_length(setup):
    task, _, sample = setup
    d = task.target_dictionary
    w = [d.index(f"w{i}") for i in range(5, 10)]
    vocab_size, eos = len(d), task.vocab.eos

    def logits_fn(tokens, src):  # every pass: w5 w5 w7 w8 w9, the second w5 less sure, w6 its second choice
        words = torch.tensor([w[0], w[0], w[2], w[3], w[4], eos])[:tokens.size(1)].expand_as(tokens)
        logits = one_hot_logits(words, vocab_size)
        logits[:, 1, w[1]] = 3.0
        return logits

    stutterer = ScriptedModel(vocab_size, [6], logits_fn)
    outputs = {rule: [h[0]["tokens"].tolist() for h in generate(task, [stutterer], sample, stutter_remask=rule)]
               for rule in ("off", "first", "on")}
    assert all(words == [w[0], w[0], w[2], w[3], w[4], eos] for words in outputs["off"])
    assert all(words == [w[0], w[1], w[2], w[3], w[4], eos] for words in outputs["first"])
    assert all(words == [w[0], w[2], w[3], w[4], eos] for words in outputs["on"])  # PaDIR's drops the copy


def copy_source(vocab_size):
    """Logits preferring, at target position i, source token i (the decoder copies the source)."""
    def logits_fn(tokens, src):
        width = tokens.size(1)
        padded = torch.nn.functional.pad(src, (0, max(0, width - src.size(1))), value=4)[:, :width]
        return one_hot_logits(padded, vocab_size)
    return logits_fn


def test_each_output_is_the_translation_of_its_own_input(setup):
    task, model, sample = setup
    d = task.target_dictionary
    sources = sample["net_input"]["src_tokens"]
    lengths = sources.ne(d.pad()).sum(1)
    copier = ScriptedModel(len(d), [], copy_source(len(d)))
    copier.length_logits = lambda encoder_out: torch.nn.functional.one_hot(lengths, 41).float() * 30
    hypos = generate(task, [copier], sample, stutter_remask=False)
    for source, length, hypo in zip(sources, lengths, hypos):
        assert hypo[0]["tokens"].tolist() == source[:length].tolist()
    # the real model: decoding the batch gives each sentence what decoding it alone gives
    batch = generate(task, [model], sample)
    for i, hypo in enumerate(batch):
        alone = generate(task, [model], make_sample(task, [SOURCES[i]]))
        assert hypo[0]["tokens"].tolist() == alone[0][0]["tokens"].tolist(), SOURCES[i]


# ---- sampling ------------------------------------------------------------------------------------------------

def tokens_of(hypos):
    return [h[0]["tokens"].tolist() for h in hypos]


def test_sampling_with_different_seeds_gives_different_outputs(setup):
    task, model, sample = setup
    outputs = [tokens_of(generate(task, [model], sample, seed=seed, sampling=True, temperature=1.5)) for seed in (1, 2)]
    assert outputs[0] != outputs[1]


def test_sampling_from_the_top_one_word_is_argmax_decoding(setup):
    task, model, sample = setup
    greedy = tokens_of(generate(task, [model], sample))
    for seed in (1, 2):
        assert tokens_of(generate(task, [model], sample, seed=seed, sampling=True, temperature=2.0,
                                  sampling_topk=1)) == greedy


VOCAB = Vocabulary(pad=1, eos=2, mask=8, random_low=3, random_high=8, never_predicted=[0, 1, 2, 8, 9])


def draws(options, positions=4000, seed=0):
    """Samples at POSITIONS positions from one distribution over 10 ids: 3 likeliest (p .4), then 4, 5, 6, 7."""
    probs = torch.tensor([0.0, 0.0, 0.0, 0.4, 0.25, 0.15, 0.12, 0.08, 0.0, 0.0])
    log_probs = probs.clamp(min=1e-12).log().expand(1, positions, 10)
    torch.manual_seed(seed)
    tokens = choose(log_probs, VOCAB, options)
    return torch.bincount(tokens.view(-1), minlength=10).float() / positions


def test_top_k_sampling_draws_only_the_k_likeliest_words():
    shares = draws(decoding_options(sampling=True, top_k=2))
    assert shares[[3, 4]].sum() == 1.0 and shares[3] > 0.5 and shares[4] > 0.3  # renormalised: .4/.65, .25/.65
    assert (draws(decoding_options(sampling=True))[3:8] > 0.05).all()  # no top-k: every word is drawn


def test_lower_temperature_sharpens_and_higher_flattens_the_sampled_distribution():
    likeliest = [draws(decoding_options(sampling=True, temperature=t))[3].item() for t in (0.3, 1.0, 3.0)]
    assert likeliest[0] > 0.7 and abs(likeliest[1] - 0.4) < 0.03 and likeliest[2] < 0.3
    assert draws(decoding_options(sampling=True, temperature=0.01))[3] == 1.0  # near zero: argmax


# ---- decoding flags, set on the task and as generation arguments ------------------------------------------

def second_pass_inputs(task, model, sample, **flags):
    """The decoder input of the second pass of each candidate, and the hypotheses."""
    calls, decode = [], model.decode
    model.decode = lambda tokens, encoder_out: calls.append(tokens.clone()) or decode(tokens, encoder_out)
    try:
        hypos = generate(task, [model], sample, **flags)
    finally:
        del model.decode
    return calls[1], hypos


def test_retain_dropout_keeps_dropout_on_while_decoding(setup):
    task, model, sample = setup
    try:
        scores = [[float(h[0]["score"]) for h in generate(task, [model], sample, seed=seed, retain_dropout=True)]
                  for seed in (1, 2)]
        assert model.training and scores[0] != scores[1]
    finally:
        model.eval()
    scores = [[float(h[0]["score"]) for h in generate(task, [model], sample, seed=seed)] for seed in (1, 2)]
    assert not model.training and scores[0] == scores[1]


def test_the_generator_puts_a_model_left_training_in_evaluation_mode_down_to_each_submodule(setup):
    task, model, sample = setup
    expected = [[float(h[0]["score"]) for h in generate(task, [model], sample, seed=1)]]
    for part in (model, model.decoder.blocks[0].feed_forward):  # as a trainer leaves it; one submodule switched
        part.train()
        assert [[float(h[0]["score"]) for h in generate(task, [model], sample, seed=2)]] == expected
        assert not any(module.training for module in model.modules())


def test_reject_k_from_the_task_or_the_generation_arguments_remasks_that_many_words(tmp_path):
    task, model, _ = build_task_and_model(tmp_path, "--rejecter", "bottom-k", "--reject-k", "2")
    model.eval()
    sample = make_sample(task, SOURCES)
    assert task.refinement_options().reject_k == 2
    for flags, k in (({}, 2), ({"reject_k": 3}, 3)):
        second, _ = second_pass_inputs(task, model, sample, **flags)
        words = second.ne(task.vocab.pad) & second.ne(task.vocab.eos)
        assert second.eq(task.vocab.mask).sum(1).tolist() == words.sum(1).clamp(max=k).tolist()


def test_reject_fraction_from_the_task_or_the_generation_arguments_remasks_that_share(tmp_path):
    task, model, _ = build_task_and_model(tmp_path, "--rejecter", "bottom-fraction", "--reject-fraction", "0.5")
    model.eval()
    sample = make_sample(task, SOURCES)
    for flags, fraction in (({}, 0.5), ({"reject_fraction": 0.8}, 0.8)):
        second, _ = second_pass_inputs(task, model, sample, max_iter=6, **flags)
        words = (second.ne(task.vocab.pad) & second.ne(task.vocab.eos)).sum(1)
        assert second.eq(task.vocab.mask).sum(1).tolist() == (words.float() * fraction).floor().long().tolist()


def test_brevity_penalty_from_the_task_or_the_generation_arguments_divides_the_hypothesis_score(tmp_path):
    task, model, _ = build_task_and_model(tmp_path, "--brevity-penalty", "0.5")
    model.eval()
    sample = make_sample(task, SOURCES)
    length_log_probs = torch.log_softmax(model.length_logits(model.encode(sample["net_input"]["src_tokens"])), -1)
    for flags, alpha in (({}, 0.5), ({"brevity_penalty": 2.0}, 2.0), ({"brevity_penalty": 0.0}, None)):
        hypos = generate(task, [model], sample, iter_decode_with_beam=3, **flags)
        for row, hypo in enumerate(hypos):
            length = len(hypo[0]["tokens"])
            total = hypo[0]["positional_scores"].sum() + length_log_probs[row, length]
            penalty = length if alpha is None else ((5 + length) / 6) ** alpha
            assert float(hypo[0]["score"]) == pytest.approx(float(total / penalty), rel=1e-4)


def test_fairseq_clis_strip_eos_from_the_printed_hypotheses(setup):
    from fairseq_cli.generate import get_symbols_to_strip_from_output

    task, model, sample = setup
    generator = task.build_generator([model], Namespace(iter_decode_max_iter=1))
    assert get_symbols_to_strip_from_output(generator) == {task.vocab.eos}
    hypo = task.inference_step(generator, [model], sample)[0][0]
    text = task.target_dictionary.string(hypo["tokens"], extra_symbols_to_ignore=get_symbols_to_strip_from_output(generator))
    assert "</s>" not in text and len(text.split()) == len(hypo["tokens"]) - 1


def test_decoding_stops_after_the_first_pass_that_changes_nothing(setup):
    task, _, sample = setup
    word = task.target_dictionary.index("w5")
    vocab_size = len(task.target_dictionary)
    settled = ScriptedModel(vocab_size, [6], lambda tokens, src: one_hot_logits(torch.full_like(tokens, word), vocab_size))
    for flags, passes in (({}, 2), ({"iter_decode_force_max_iter": True}, 5)):
        hypos = generate(task, [settled], sample, max_iter=4, rejecter="passthrough", **flags)
        assert [h[0]["steps"] for h in hypos] == [passes] * len(SOURCES)


def test_logits_sum_replacement_sums_the_log_probs_of_every_pass_also_after_other_candidates_stop(setup):
    task, _, _ = setup
    d = task.target_dictionary
    a, b, c, w = (d.index(x) for x in ("w1", "w2", "w3", "w4"))
    vocab_size = len(d)
    # per pass, the scores of the continuing sentence; the other sentence (source w10) settles on A at once
    script = [{a: 3.0, b: 2.0}, {b: 2.0, c: 2.5}, {w: 1.0}, {w: 1.0}, {w: 1.0}]
    inputs = []

    def logits_fn(tokens, src):
        inputs.append(tokens.clone())
        logits = torch.zeros(tokens.size(0), tokens.size(1), vocab_size)
        for word, score in script[min(len(inputs) - 1, len(script) - 1)].items():
            logits[..., word] = score
        logits[src[:, 0].eq(d.index("w10")), :, a] = 10.0
        return logits

    model = ScriptedModel(vocab_size, [6], logits_fn)
    sample = make_sample(task, [("w10", "w10"), ("w1 w2", "w2")])
    generate(task, [model], sample, max_iter=4, rejecter="bottom-k", reject_k=1, replacement="logits-sum",
             stutter_remask="off")  # the script predicts one word everywhere: no copy may take its next best
    assert [len(x) for x in inputs[:4]] == [2, 2, 1, 1]  # the first sentence stopped after pass 2
    # pass 3's prediction is w4 everywhere but at the rejected word, which takes the argmax of the summed
    # scores: A 3, B 4, C 2.5, w4 1 -> B (pass 3 alone would give w4, a difference of passes A)
    words = inputs[3][0, :-1].tolist()
    assert sorted(words) == [b] + [w] * 4


def test_history_is_kept_for_every_candidate_also_when_there_are_more_candidates_than_positions(setup):
    task, model, sample = setup
    hypos = generate(task, [model], sample, max_iter=2, retain_iter_history=True, iter_decode_with_beam=4,
                     length_offsets=3, restarts=2, decoder_init="random")  # 24 candidates per sentence
    for hypo in hypos:
        assert len(hypo[0]["history"]) == hypo[0]["steps"]


def test_bad_restarts_decoder_init_and_temperature_are_refused_with_the_flag_name():
    for options, message in ((decoding_options(restarts=0), "^--restarts must be >= 1, got 0$"),
                             (decoding_options(length_group_size=-1), "^--length-group-size must be >= 0"),
                             (decoding_options(decoder_init="zeros"),
                              "^--decoder-init must be 'mask' or 'random', got 'zeros'$"),
                             (decoding_options(temperature=0.0), r"^--temperature must be > 0, got 0\.0$"),
                             (decoding_options(temperature=-1.0), r"^--temperature must be > 0, got -1\.0$")):
        with pytest.raises(UsageError, match=message):
            options.check()


def test_sampling_top_k_above_the_vocabulary_samples_from_all_of_it():
    vocab = Vocabulary(pad=1, eos=2, mask=8, random_low=3, random_high=8, never_predicted=[0, 1, 2, 8, 9])
    log_probs = torch.randn(1, 3, 10).log_softmax(-1)
    torch.manual_seed(0)
    tokens = choose(log_probs, vocab, decoding_options(sampling=True, top_k=50))
    assert tokens.shape == (1, 3) and all(t in range(3, 8) for t in tokens.view(-1).tolist())
    # one position per row: the whole vocabulary stays in play, not just the best word
    rows = torch.randn(400, 1, 10).log_softmax(-1)
    sampled = choose(rows, vocab, decoding_options(sampling=True, top_k=50))
    best = choose(rows, vocab, decoding_options())
    assert (sampled != best).float().mean() > 0.3


def test_length_groups_take_the_candidates_shortest_first_each_once():
    lengths = torch.tensor([7, 3, 9, 3, 5])
    groups = length_groups(lengths, 2)
    assert [lengths[group].tolist() for group in groups] == [[3, 3], [5, 7], [9]]
    assert sorted(torch.cat(groups).tolist()) == [0, 1, 2, 3, 4]
    for size in (0, 5, 6):  # 0: off; at least as many as there are candidates: one group
        assert [group.tolist() for group in length_groups(lengths, size)] == [[0, 1, 2, 3, 4]]


def test_refining_in_length_groups_gives_the_same_hypotheses_on_canvases_as_wide_as_each_group(setup, monkeypatch):
    task, model, sample = setup
    canvases = []  # per refine call: (candidates, canvas width, longest candidate)
    refine = GMLMGenerator.refine

    def spy(self, models, encoder_outs, initial):
        canvases.append((initial.size(0), initial.size(1), int(initial.ne(task.vocab.pad).sum(1).max())))
        return refine(self, models, encoder_outs, initial)

    monkeypatch.setattr(GMLMGenerator, "refine", spy)
    for flags in ({}, {"iter_decode_with_beam": 2, "length_offsets": 3, "retain_iter_history": True},
                  {"decoder_init": "random", "restarts": 2, "stutter_remask": "on"}):
        canvases.clear()
        together = generate(task, [model], sample, length_group_size=0, **flags)
        assert len(canvases) == 1
        full_width = canvases[0][1]
        canvases.clear()
        grouped = generate(task, [model], sample, length_group_size=2, **flags)
        assert len(canvases) > 1 and all(rows <= 2 and width == longest for rows, width, longest in canvases)
        assert min(width for _, width, _ in canvases) < full_width
        for one, other in zip(together, grouped):
            one, other = one[0], other[0]
            assert one["tokens"].tolist() == other["tokens"].tolist() and one["steps"] == other["steps"]
            assert torch.allclose(one["positional_scores"], other["positional_scores"], atol=1e-5)
            if one["history"] is not None:
                assert ([h["tokens"].tolist() for h in one["history"]]
                        == [h["tokens"].tolist() for h in other["history"]])


def test_decoding_runs_in_inference_mode_hands_out_ordinary_tensors_and_leaves_the_model_trainable(setup, tmp_path,
                                                                                                  monkeypatch):
    task, model, sample = setup
    modes, decode = [], model.decode
    monkeypatch.setattr(model, "decode", lambda *args, **kwargs: modes.append(torch.is_inference_mode_enabled())
                        or decode(*args, **kwargs))
    hypos = generate(task, [model], sample, retain_iter_history=True)
    assert modes and all(modes)  # every pass in inference mode ...
    for hypo in hypos:  # ... and hands out tensors a caller may change in place, as fairseq-generate does
        best = hypo[0]
        assert not any(tensor.is_inference() for tensor in (best["tokens"], best["positional_scores"], best["score"]))
        assert not any(entry["tokens"].is_inference() for entry in best["history"])
        before = best["positional_scores"].clone()
        torch.testing.assert_close(best["positional_scores"].div_(2.0), before / 2)
    _, trained, _ = build_task_and_model(tmp_path)  # a fresh model: decode first, then train it
    generate(task, [trained.eval()], sample)
    trained.train()
    out = trained(**sample["net_input"], prev_output_tokens=sample["target"])
    out.logits.logsumexp(-1).sum().backward()
    assert all(parameter.grad is not None for parameter in trained.decoder.parameters())
