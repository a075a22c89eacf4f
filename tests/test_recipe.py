"""The translating recipe: warm start from t5_ar (--init-from-ar), decoder position inputs (--position-input,
--encoder-positions), the shifted decoder input (--shift-decoder-input), the model's own predictions in the input
(--predicted-token-prob), glancing training (--glancing-ratio), the EOS position in the token loss and the length
head's offsets from the source length (--pred-length-offset)."""

import re

import pytest
import torch

from conftest import BIN, PLUGIN, TRAIN, build_task_and_model, gmlm_args, gmlm_loss, run_cli, train
from test_gmlm_loss import LONG_ROWS, ROWS, argmax_words, make_sample

from fairseq_gmlm import noising
from fairseq_gmlm.errors import UsageError
from fairseq_gmlm.models.t5_layers import bidirectional_from_causal, diverse_relative_bias
from fairseq_gmlm.models.warm_start import gmlm_name, warm_state


def last_valid_loss(log: str) -> float:
    return float(re.findall(r"valid on 'valid' subset \| loss ([\d.]+)", log)[-1])


# ---- warm start ---------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_warm_start_copies_every_ar_parameter_and_maps_the_decoder_bias(reversal_corpus, ar_checkpoint, tmp_path):
    for lang in ("src", "tgt"):
        (tmp_path / f"dict.{lang}.txt").write_text((reversal_corpus / "bin" / f"dict.{lang}.txt").read_text())
    _, model, _ = build_task_and_model(tmp_path, "--init-from-ar", ar_checkpoint, words=None)
    ar = torch.load(ar_checkpoint, map_location="cpu", weights_only=False)["model"]
    state = model.state_dict()
    rows = ar["encoder.embed_tokens.weight"].size(0)
    assert len(model.dictionary) == rows + 2  # <mask>, <length> appended
    checked = 0
    for ar_name, value in ar.items():
        name = gmlm_name(ar_name)
        if name is None:
            continue
        if name == "decoder.relative_position.relative_attention_bias.weight":
            torch.testing.assert_close(state[name], bidirectional_from_causal(value, 32, 128))
            assert not torch.equal(state[name], value)
        elif name in ("embed_tokens.weight", "lm_head.weight"):
            assert torch.equal(state[name][:rows], value)
        else:
            assert torch.equal(state[name], value), name
        checked += 1
    assert checked == len(ar) - 1  # every AR tensor but the decoder's alias of the shared embedding
    # the length head has no AR counterpart and keeps its fresh initialisation
    fresh = build_task_and_model(tmp_path, words=None)[1].state_dict()  # the same seed
    assert torch.equal(state["length_head.length_embedding.weight"], fresh["length_head.length_embedding.weight"])


@pytest.mark.slow
def test_a_fresh_warm_decoder_bias_keeps_the_gmlms_own_table_and_copies_everything_else(reversal_corpus, ar_checkpoint,
                                                                                      tmp_path):
    for lang in ("src", "tgt"):
        (tmp_path / f"dict.{lang}.txt").write_text((reversal_corpus / "bin" / f"dict.{lang}.txt").read_text())
    diverse = ("--relative-attention-init", "diverse")
    _, model, _ = build_task_and_model(tmp_path, "--init-from-ar", ar_checkpoint, "--warm-decoder-bias", "fresh",
                                       *diverse, words=None)
    _, mirrored, _ = build_task_and_model(tmp_path, "--init-from-ar", ar_checkpoint, *diverse, words=None)
    state, mirror_state = model.state_dict(), mirrored.state_dict()
    table = "decoder.relative_position.relative_attention_bias.weight"
    heads = state[table].size(1)
    torch.testing.assert_close(state[table], diverse_relative_bias(heads, bidirectional=True))
    assert not torch.allclose(state[table], mirror_state[table])
    assert all(torch.equal(value, mirror_state[name]) for name, value in state.items() if name != table)
    with pytest.raises(UsageError, match="--warm-decoder-bias 'left': choose one of mirror, fresh"):
        warm_state({}, state, 32, 128, decoder_bias="left")


@pytest.mark.slow
def test_warm_start_is_logged_and_beats_scratch_after_the_same_updates(reversal_corpus, ar_checkpoint, tmp_path):
    data = reversal_corpus / "bin"
    common = gmlm_args("--max-update", "30", "--position-input", "learned")
    warm = train(data, tmp_path / "warm", *common, "--init-from-ar", ar_checkpoint)
    scratch = train(data, tmp_path / "scratch", *common)
    assert re.search(r"--init-from-ar .*: copied \d+ parameters: embed_tokens\.weight", warm)
    assert "created fresh: decoder_positions.weight, length_head.length_embedding.weight" in warm
    assert last_valid_loss(warm) < last_valid_loss(scratch)


@pytest.mark.slow
def test_warm_start_refuses_a_checkpoint_of_another_shape(reversal_corpus, ar_checkpoint, tmp_path):
    result = run_cli("fairseq-train", reversal_corpus / "bin", "--user-dir", PLUGIN, "--save-dir", tmp_path, *TRAIN,
                     *gmlm_args("--max-update", "1", "--d-ff", "96", "--init-from-ar", ar_checkpoint), check=False)
    assert result.returncode != 0
    assert "--init-from-ar" in result.stderr and "same --arch size" in result.stderr


# ---- position inputs through the CLIs -----------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("position_args", [["--position-input", "mask-range"],
                                           ["--position-input", "positional-attention"],
                                           ["--position-input", "learned", "--encoder-positions"]])
def test_position_inputs_train_and_decode_through_the_clis(reversal_corpus, tmp_path, position_args):
    data = reversal_corpus / "bin"
    log = train(data, tmp_path, *gmlm_args("--max-update", "20", *position_args))
    assert "num_updates 20" in log or "num_updates=20" in log
    result = run_cli("fairseq-generate", data, "--user-dir", PLUGIN, "--task", "translation_gmlm", "--path",
                     tmp_path / "checkpoint_last.pt", "--cpu", "--iter-decode-max-iter", "2", "--batch-size", "16")
    assert sum(line.startswith("H-") for line in result.stdout.splitlines()) == 100


def test_mask_range_gives_each_masked_position_its_own_input(tmp_path):
    _, model, _ = build_task_and_model(tmp_path, "--position-input", "mask-range")
    tokens = torch.tensor([[model.mask_idx] * 4 + [model.eos]])
    x = model.embed_decoder_input(tokens)[0]  # T x C
    assert not torch.allclose(x[0], x[1])  # two <mask>s at different positions differ
    torch.testing.assert_close(x[2], model.decoder_positions.weight[2])
    word = torch.tensor([[5, 5, model.eos]])
    y = model.embed_decoder_input(word)[0]
    torch.testing.assert_close(y[0], y[1])  # words keep their plain embedding


def test_positional_attention_makes_equal_inputs_differ_by_position(tmp_path):
    _, model, _ = build_task_and_model(tmp_path, "--position-input", "positional-attention", "--dropout", "0",
                                       "--relative-attention-init-std", "0")
    model.eval()
    torch.nn.init.zeros_(model.decoder.relative_position.relative_attention_bias.weight)  # no relative signal
    src = torch.tensor([[5, 6, 7, model.eos]])
    encoder_out = model.encode(src)
    canvas = torch.tensor([[model.mask_idx] * 4 + [model.eos]])
    logits = model.decode(canvas, encoder_out)[0]
    assert not torch.allclose(logits[0], logits[1], atol=1e-5)
    plain = build_task_and_model(tmp_path / "plain", "--dropout", "0")[1].eval()
    torch.nn.init.zeros_(plain.decoder.relative_position.relative_attention_bias.weight)
    plain_logits = plain.decode(canvas, plain.encode(src))[0]
    torch.testing.assert_close(plain_logits[0], plain_logits[1])  # without it, all-<mask> positions are identical


@pytest.mark.parametrize("skips", [False, True])
def test_cross_attention_reads_the_length_state_unless_told_to_skip_it(tmp_path, skips):
    flags = ("--cross-attention-skips-length",) if skips else ()
    _, model, _ = build_task_and_model(tmp_path, "--dropout", "0", *flags)
    model.eval()
    encoder_out = model.encode(torch.tensor([[5, 6, 7, model.eos]]))
    changed = encoder_out._replace(out=encoder_out.out.clone().index_fill_(1, torch.tensor([0]), 3.0))
    canvas = torch.tensor([[model.mask_idx] * 3 + [model.eos]])
    same = torch.allclose(model.decode(canvas, encoder_out), model.decode(canvas, changed))
    assert same is skips  # only the <length> state (encoder position 0) changed
    assert model.length_logits(encoder_out).shape == model.length_logits(changed).shape


# ---- shifted decoder input -----------------------------------------------------------------------------------------

def test_shifted_input_reads_word_i_minus_1_at_position_i_and_keeps_each_row_s_padding(tmp_path):
    """--shift-decoder-input: the decoder reads EOS, then the canvas but its last token (as t5_ar reads a target);
    the logits stay one per canvas position. The flag adds no parameter, so one seed builds the same weights."""
    _, shifted, _ = build_task_and_model(tmp_path, "--dropout", "0", "--position-input", "learned",
                                         "--shift-decoder-input")
    _, plain, _ = build_task_and_model(tmp_path / "plain", "--dropout", "0", "--position-input", "learned")
    shifted.eval()
    plain.eval()
    src = torch.tensor([[5, 6, 7, shifted.eos], [8, 9, 10, shifted.eos]])
    m, eos, pad = shifted.mask_idx, shifted.eos, shifted.pad
    canvas = torch.tensor([[11, m, 12, m, eos], [13, m, eos, pad, pad]])
    reads = torch.tensor([[eos, 11, m, 12, m], [eos, 13, m, pad, pad]])  # what position i reads: word i - 1
    logits = shifted.decode(canvas, shifted.encode(src))
    assert logits.shape == (2, 5, len(shifted.dictionary))
    torch.testing.assert_close(logits, plain.decode(reads, plain.encode(src)))
    # padding stays padding: the short row decodes as it does alone
    torch.testing.assert_close(logits[1, :3], shifted.decode(canvas[1:, :3], shifted.encode(src[1:]))[0])


def test_shifted_input_never_reads_the_last_token_of_the_canvas(tmp_path):
    _, model, _ = build_task_and_model(tmp_path, "--dropout", "0", "--shift-decoder-input")
    model.eval()
    encoder_out = model.encode(torch.tensor([[5, 6, 7, model.eos]]))
    canvas = torch.tensor([[11, model.mask_idx, 12, model.eos]])
    changed = canvas.clone()
    changed[0, -1] = 13  # only the last position differs
    torch.testing.assert_close(model.decode(canvas, encoder_out), model.decode(changed, encoder_out))
    changed[0, 0] = 14  # the first word is read at position 1
    assert not torch.allclose(model.decode(canvas, encoder_out), model.decode(changed, encoder_out))


# ---- the autoregressive loss beside the GMLM's ------------------------------------------------------------------

@pytest.mark.parametrize("position_input", ["none", "learned", "mask-range", "positional-attention"])
def test_causal_decoding_predicts_each_word_from_the_words_before_it_only(tmp_path, position_input):
    """decode(causal=True), the --ar-loss-weight pass: position i reads words 0..i-1 (the target shifted right)
    and nothing after them, through every attention over target positions (positional attention too)."""
    _, model, _ = build_task_and_model(tmp_path, "--dropout", "0", "--position-input", position_input)
    model.eval()
    encoder_out = model.encode(torch.tensor([[5, 6, 7, model.eos]]))
    target = torch.tensor([[11, 12, 13, 14, model.eos]])
    changed = target.clone()
    changed[0, 2] = 15  # word 2 differs: read from position 3 on
    logits, changed_logits = (model.decode(t, encoder_out, causal=True) for t in (target, changed))
    torch.testing.assert_close(logits[:, :3], changed_logits[:, :3])
    assert not torch.allclose(logits[:, 3], changed_logits[:, 3])
    bidirectional = model.decode(target, encoder_out), model.decode(changed, encoder_out)
    assert not torch.allclose(bidirectional[0][:, 0], bidirectional[1][:, 0])  # without the mask, word 0 sees it


def test_ar_loss_adds_the_causal_passes_smoothed_loss_on_every_real_token_with_its_weight(tmp_path):
    task, model, _ = build_task_and_model(tmp_path, "--dropout", "0")
    criterion, plain = gmlm_loss(task, ar_loss_weight=0.5), gmlm_loss(task)
    model.eval()
    sample = task.corrupt(make_sample(task, ROWS), update=3)
    loss, sample_size, logged = criterion(model, sample)
    plain_loss, plain_size, plain_logged = plain(model, sample)

    target = sample["target"]
    real = target.ne(task.target_dictionary.pad())
    log_probs = torch.log_softmax(model.decode(target, model.encode(sample["net_input"]["src_tokens"]),
                                               causal=True), -1)  # B x T x V
    nll = -log_probs.gather(-1, target.unsqueeze(-1)).squeeze(-1)[real]  # R
    smoothed = 0.9 * nll + 0.1 * -log_probs.mean(-1)[real]
    torch.testing.assert_close(loss, plain_loss + 0.5 * smoothed.sum())
    assert float(sample_size) == float(plain_size) + 0.5 * int(real.sum())
    torch.testing.assert_close(logged["ar_nll_loss"], nll.sum())
    assert "ar_nll_loss" not in plain_logged


def test_a_negative_ar_loss_weight_is_refused_naming_the_flag(tmp_path):
    task, _, cfg = build_task_and_model(tmp_path, "--ar-loss-weight", "-1")  # as fairseq-train parses it
    with pytest.raises(ValueError, match="--ar-loss-weight"):
        task.build_criterion(cfg.criterion)


@pytest.mark.slow
@pytest.mark.parametrize("flags, logged", [(["--shift-decoder-input"], "'shift_decoder_input': True"),
                                           (["--ar-loss-weight", "0.5"], "ar_nll_loss"),
                                           (["--predicted-token-prob", "0.5"], "'predicted_token_prob': 0.5"),
                                           (["--pred-length-offset"], "'pred_length_offset': True"),
                                           (["--warm-decoder-bias", "fresh"], "bidirectional layout: none")])
def test_a_warm_start_variant_trains_and_decodes_through_the_clis(reversal_corpus, ar_checkpoint, tmp_path, flags,
                                                                   logged):
    data = reversal_corpus / "bin"
    log = train(data, tmp_path, *gmlm_args("--max-update", "30", "--position-input", "learned",
                                           "--init-from-ar", ar_checkpoint, *flags))
    assert logged in log and ("num_updates 30" in log or "num_updates=30" in log)
    result = run_cli("fairseq-generate", data, "--user-dir", PLUGIN, "--task", "translation_gmlm", "--path",
                     tmp_path / "checkpoint_last.pt", "--cpu", "--iter-decode-max-iter", "2", "--batch-size", "16")
    hypotheses = [line for line in result.stdout.splitlines() if line.startswith("H-")]
    assert len(hypotheses) == 100


# ---- the model's own predictions in the input (--predicted-token-prob) ------------------------------------------

def test_predictions_replace_a_share_of_the_noised_words_and_nothing_else():
    target = torch.randint(10, 90, (64, 30))
    target[:, -1] = 2
    corruption = noising.corrupt(target, noising.example_keys(torch.arange(64), 1, 3), pad=1, eos=2, mask=9,
                                 random_low=10, random_high=90, mask_ratio=0.6, random_prob=0.1, keep_prob=0.1)
    predicted = torch.full_like(target, 95)  # a word the corruption never writes
    keys = noising.example_keys(torch.arange(64), 1, 3)
    half = noising.with_predictions(corruption, predicted, keys, prob=0.5)
    chosen = half.tokens.eq(95)
    assert not (chosen & ~corruption.noised).any()  # only noised positions
    assert abs(chosen.sum().item() / corruption.noised.sum().item() - 0.5) < 0.05
    assert torch.equal(half.tokens[~chosen], corruption.tokens[~chosen])
    assert torch.equal(half.masked, corruption.masked & ~chosen) and torch.equal(half.noised, corruption.noised)
    everything = noising.with_predictions(corruption, predicted, keys, prob=1.0)
    assert torch.equal(everything.tokens.eq(95), corruption.noised) and not everything.masked.any()
    assert torch.equal(noising.with_predictions(corruption, predicted, keys, prob=0.0).tokens, corruption.tokens)


def test_the_predictions_come_from_a_pass_over_the_target_with_its_noised_words_masked(tmp_path):
    task, model, _ = build_task_and_model(tmp_path, "--dropout", "0", "--mask-ratio", "0.6",
                                          "--predicted-token-prob", "1")
    inputs = []
    decode = model.decode
    model.decode = lambda tokens, *args, **kwargs: inputs.append(tokens.clone()) or decode(tokens, *args, **kwargs)
    sample = task.corrupt(make_sample(task, LONG_ROWS), update=3, model=model)
    target, corruption = sample["target"], sample["corruption"]
    assert len(inputs) == 1 and torch.equal(inputs[0], target.masked_fill(corruption.noised, task.vocab.mask))
    with torch.no_grad():  # every position's argmax among the words, from the same canvas and weights (no dropout)
        net_input = sample["net_input"]
        expected, _ = argmax_words(task, decode(inputs[0], model.encode(net_input["src_tokens"],
                                                                        net_input["src_lengths"])))
    assert corruption.noised.any() and not corruption.masked.any()
    tokens = sample["net_input"]["prev_output_tokens"]
    assert torch.equal(tokens[corruption.noised], expected[corruption.noised])
    assert torch.equal(tokens[~corruption.noised], target[~corruption.noised])
    assert not tokens.eq(task.vocab.mask).any()
    unseen = task.corrupt(make_sample(task, LONG_ROWS), update=3)  # validation: no model, the random corruption
    assert torch.equal(unseen["corruption"].noised, corruption.noised) and unseen["corruption"].masked.any()


def test_predicted_tokens_out_of_range_or_beside_glancing_are_refused_naming_the_flags(tmp_path):
    from fairseq_gmlm.errors import UsageError

    with pytest.raises(UsageError, match=r"^--predicted-token-prob must be in \[0, 1\] \(0 = off\), got 1.5$"):
        build_task_and_model(tmp_path, "--predicted-token-prob", "1.5")
    with pytest.raises(UsageError, match="^--glancing-ratio replaces the random corruption, so --predicted-token-prob"):
        build_task_and_model(tmp_path, "--predicted-token-prob", "0.2", "--glancing-ratio", "0.5")


# ---- glancing ---------------------------------------------------------------------------------------------------

def glance(target, predicted, ratio, ids=(0, 1)):
    keys = noising.example_keys(torch.tensor(ids), seed=1, update=3)
    return noising.glance(target, predicted, keys, ratio=ratio, pad=1, eos=2, mask=9)


def test_glancing_reveals_ratio_times_the_wrong_words_and_masks_the_rest():
    target = torch.tensor([[10, 11, 12, 13, 14, 15, 2, 1], [10, 11, 12, 13, 14, 15, 16, 2]])
    worse = target.clone()
    worse[0, :6] = 20  # 6 wrong words
    worse[1, :2] = 20  # 2 wrong words
    corruption = glance(target, worse, 0.5)
    revealed = (corruption.tokens.ne(9) & target.ne(1) & target.ne(2)).sum(1)
    assert revealed.tolist() == [3, 1]
    assert corruption.tokens[0, 6] == 2 and corruption.tokens[0, 7] == 1  # EOS and padding untouched
    assert torch.equal(corruption.masked, corruption.tokens.eq(9))
    assert torch.equal(corruption.noised, corruption.masked)
    kept = corruption.tokens.ne(9)
    assert torch.equal(corruption.tokens[kept], target[kept])  # what is revealed is the reference


def test_glancing_reveals_more_when_the_first_pass_is_worse():
    target = torch.arange(10, 30).view(1, 20)
    target[0, -1] = 2
    counts = []
    for wrong in (0, 5, 10, 19):
        predicted = target.clone()
        predicted[0, :wrong] = 99
        counts.append(int(glance(target, predicted, 0.6, ids=(4,)).tokens.ne(9).sum()) - 1)  # minus EOS
    assert counts == [0, 3, 6, 11]


@pytest.mark.slow
def test_glancing_training_logs_and_two_gloo_processes_match_one(ding_slice, tmp_path):
    from test_scale import logged_updates, train_command

    data = ding_slice / "prepared" / "bin"
    common = ["--lr", "1e-3", "--max-update", "1", "--dropout", "0", "--glancing-ratio", "0.5"]
    single = run_cli("fairseq-train", *train_command(data, tmp_path / "one", *common, "--update-freq", "2"))
    double = run_cli("torchrun", "--standalone", "--nproc_per_node", "2", BIN / "fairseq-train",
                     *train_command(data, tmp_path / "two", *common, "--distributed-backend", "gloo"), timeout=300)
    first_single, first_double = logged_updates(single.stdout)[1], logged_updates(double.stdout + double.stderr)[1]
    for key in ("loss", "nll_loss", "length_loss", "gnorm", "wpb", "bsz"):
        assert first_single[key] == first_double[key], key


# ---- the EOS position in the token loss ----------------------------------------------------------------------

@pytest.mark.parametrize("loss_positions", ["noised", "masked", "all"])
def test_eos_position_receives_gradient_under_every_loss_positions(tmp_path, loss_positions):
    task, model, _ = build_task_and_model(tmp_path, "--dropout", "0")
    sample = task.corrupt(make_sample(task, ROWS), update=1)
    captured = {}

    def keep(module, inputs, output):
        output.retain_grad()
        captured["hidden"] = output

    model.decoder.register_forward_hook(keep)  # B x T x C, before the output projection (a position's own logits)
    criterion = gmlm_loss(task, loss_positions=loss_positions)
    loss, _, _ = criterion(model, sample)
    loss.backward()
    eos = sample["target"].eq(task.target_dictionary.eos())
    assert captured["hidden"].grad[eos].abs().sum(-1).gt(0).all()  # every sentence's EOS


# ---- validation BLEU when some batches have no hypothesis n-gram --------------------------------------------

def bleu_logs(counts, totals):
    log = {"_bleu_sys_len": 4, "_bleu_ref_len": 4}
    for i in range(4):
        log[f"_bleu_counts_{i}"], log[f"_bleu_totals_{i}"] = counts[i], totals[i]
    return [log]


@pytest.mark.parametrize("order", ["words first", "empty first"])
def test_validation_bleu_survives_batches_without_ngrams_in_either_order(tmp_path, order):
    from fairseq.logging import metrics

    task, _, cfg = build_task_and_model(tmp_path, "--eval-bleu")
    criterion = task.build_criterion(cfg.criterion)
    words, empty = bleu_logs([4, 3, 2, 1], [4, 3, 2, 1]), bleu_logs([0] * 4, [0] * 4)
    batches = [words, empty] if order == "words first" else [empty, words]
    with metrics.aggregate(new_root=True) as aggregator:
        for logs in batches:
            for log in logs:
                log.update(loss=1.0, nll_loss=1.0, length_loss=1.0, ntokens=4, nsentences=1, sample_size=4)
            task.reduce_metrics(logs, criterion)
        bleu = aggregator.get_smoothed_values()["bleu"]
    assert bleu == 100.0  # the one batch with words is a perfect match; the empty batch adds no n-grams


def test_glancing_reveals_words_at_random_positions_not_the_leftmost():
    target = torch.arange(10, 30).view(1, 20).repeat(40, 1)
    target[:, -1] = 2
    predicted = torch.full_like(target, 99)  # every word wrong: reveal floor(0.25 x 19) = 4 per example
    revealed = glance(target, predicted, 0.25, ids=tuple(range(40))).tokens.ne(9)[:, :-1]  # 40 x 19 words
    assert revealed.sum(1).eq(4).all()
    assert len({tuple(row.nonzero().view(-1).tolist()) for row in revealed}) > 30  # different positions per example
    assert revealed.float().mean(0).min() > 0  # and every position is revealed somewhere


# ---- the length head's offsets (--pred-length-offset) -------------------------------------------------------------

def test_offset_length_logits_of_a_sentence_do_not_depend_on_its_batch_mates(tmp_path):
    """The source length the head adds is the sentence's own: neither <length> nor its batch's padding counts."""
    task, model, _ = build_task_and_model(tmp_path, "--dropout", "0", "--pred-length-offset")
    model.eval()
    sample = make_sample(task, LONG_ROWS)
    source = sample["net_input"]["src_tokens"]
    batch = model.length_logits(model.encode(source))
    for row, tokens in enumerate(source):
        single = model.length_logits(model.encode(tokens[tokens.ne(task.vocab.pad)][None]))
        torch.testing.assert_close(batch[row], single[0], atol=1e-5, rtol=1e-4)
    state = model.encode(source).out[:, 0]
    lengths = source.ne(task.vocab.pad).sum(1)  # words and EOS
    torch.testing.assert_close(batch, model.length_head(state, lengths))


@pytest.mark.slow
def test_offset_length_head_learns_a_length_the_source_fixes_faster_than_the_plain_head(reversal_corpus, tmp_path):
    """On sequence reversal the target is exactly as long as the source: an offset head has one class to learn,
    the plain head must count the source through bucketed relative positions."""
    data = reversal_corpus / "bin"
    common = gmlm_args("--max-update", "40", "--position-input", "learned")
    offset = train(data, tmp_path / "offset", *common, "--pred-length-offset")
    plain = train(data, tmp_path / "plain", *common)
    assert "'pred_length_offset': True" in offset

    def valid_length_loss(log):
        return float(re.findall(r"valid on 'valid' subset \|.*\| length_loss ([\d.]+)", log)[-1])

    assert valid_length_loss(offset) < 0.5 * valid_length_loss(plain)
