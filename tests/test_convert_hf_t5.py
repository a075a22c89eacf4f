"""fairseq_gmlm/cli/convert_hf_t5.py (gmlm-convert-hf-t5) and models/t5_ar.py against Hugging Face T5, offline.

Random T5 models are built from small ``T5Config``s (ReLU and gated-GELU feed-forward, tied and untied output
head), saved to temporary folders with a sentencepiece model trained here, converted, and compared with the
Hugging Face implementation: encoder outputs, t5_ar decoder logits (teacher forced and cached step by step),
greedy decoding through fairseq's SequenceGenerator against ``generate``; finally gmlm_t5 fine-tunes from a
converted checkpoint through the real fairseq-train. gmlm_t5's decoder is compared by its position-bias table
only: the converter lays T5's one-directional table out bidirectionally for it (see convert_hf_t5's docstring),
so its decoder does not compute what T5's does; its encoder does. ``transformers`` is a test-only extra.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]

pytest.importorskip("transformers")
pytest.importorskip("sentencepiece")
from transformers import T5Config, T5ForConditionalGeneration  # noqa: E402

import fairseq_gmlm  # noqa: E402,F401
from fairseq_gmlm.cli import convert_hf_t5  # noqa: E402
from fairseq_gmlm.models.t5_layers import bidirectional_from_causal  # noqa: E402
from fairseq import checkpoint_utils  # noqa: E402
from fairseq.sequence_generator import SequenceGenerator  # noqa: E402

CORPUS = ROOT / "data" / "ding-de-en"
EXTRA_IDS = 4
UNUSED_ROWS = 3
TOLERANCE = 1e-5
CASES = [("relu", True), ("relu", False), ("gated-gelu", True), ("gated-gelu", False)]
CASE_IDS = [f"{kind}-{'tied' if tied else 'untied'}" for kind, tied in CASES]


def corpus_lines(split: str, lang: str, count: int):
    with open(CORPUS / f"{split}.{lang}", encoding="utf-8") as f:
        return [next(f).strip() for _ in range(count)]


@pytest.fixture(scope="module")
def spm(tmp_path_factory):
    """A T5-style sentencepiece model (pad 0, eos 1, unk 2, no bos) trained on a slice of the Ding corpus."""
    import sentencepiece

    work = tmp_path_factory.mktemp("spm")
    text = work / "text.txt"
    text.write_text("\n".join(corpus_lines("train", "de", 400) + corpus_lines("train", "en", 400)) + "\n")
    sentencepiece.SentencePieceTrainer.train(
        input=str(text), model_prefix=str(work / "spiece"), vocab_size=150, model_type="unigram",
        pad_id=0, eos_id=1, unk_id=2, bos_id=-1, num_threads=1, hard_vocab_limit=False, minloglevel=2,
    )
    return work / "spiece.model"


def build_hf_t5(spm_path: Path, kind: str, tied: bool, seed: int = 0):
    import sentencepiece

    pieces = sentencepiece.SentencePieceProcessor(model_file=str(spm_path)).get_piece_size()
    config = T5Config(
        vocab_size=pieces + EXTRA_IDS + UNUSED_ROWS, d_model=32, d_kv=8, d_ff=48, num_layers=2, num_decoder_layers=3,
        num_heads=4, relative_attention_num_buckets=8, relative_attention_max_distance=20, feed_forward_proj=kind,
        dropout_rate=0.0, tie_word_embeddings=tied, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1,
    )
    torch.manual_seed(seed)
    model = T5ForConditionalGeneration(config)
    if not tied:  # T5 v1.1: a head of its own and no output scaling
        model.lm_head = torch.nn.Linear(config.d_model, config.vocab_size, bias=False)
        torch.nn.init.normal_(model.lm_head.weight, std=1.0)
        assert not model.config.scale_decoder_outputs
    return model.eval()


def save_hf_t5(model, spm_path: Path, directory: Path, tied: bool) -> Path:
    """Tied: save_pretrained (safetensors, transformers 5 config). Untied: a transformers-4-style folder
    (``tie_word_embeddings: false``, pytorch_model.bin with lm_head.weight and a legacy unused tensor)."""
    directory.mkdir(parents=True, exist_ok=True)
    if tied:
        model.save_pretrained(directory)
    else:
        config = model.config.to_dict()
        config.pop("scale_decoder_outputs", None)
        config["tie_word_embeddings"] = False
        (directory / "config.json").write_text(json.dumps(config))
        state = {name: tensor.clone() for name, tensor in model.state_dict().items()}
        state["decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight"] = torch.zeros(8, 4)
        torch.save(state, directory / "pytorch_model.bin")
    shutil.copyfile(spm_path, directory / "spiece.model")
    (directory / "tokenizer_config.json").write_text(json.dumps({"extra_ids": EXTRA_IDS}))
    return directory


def load_converted(out_dir: Path):
    """The converted checkpoint through fairseq's own loader (task built from the converted dict.txt)."""
    for lang in ("src", "tgt"):
        shutil.copyfile(out_dir / "dict.txt", out_dir / f"dict.{lang}.txt")
    models, cfg, task = checkpoint_utils.load_model_ensemble_and_task(
        [str(out_dir / "checkpoint.pt")], arg_overrides={"source_lang": "src", "target_lang": "tgt"}
    )
    return models[0].eval(), task


@pytest.fixture(scope="module")
def converted(spm, tmp_path_factory):
    """(kind, tied, target) -> (hf_model, fairseq_model, task, report), converted once per module."""
    cache = {}

    def get(kind: str, tied: bool, target: str):
        key = (kind, tied, target)
        if key not in cache:
            hf = build_hf_t5(spm, kind, tied)
            work = tmp_path_factory.mktemp(f"{kind}-{tied}-{target}")
            hf_dir = save_hf_t5(hf, spm, work / "hf", tied)
            report = convert_hf_t5.convert(str(hf_dir), str(work / "out"), target, max_source=64, max_target=64)
            model, task = load_converted(work / "out")
            cache[key] = (hf, model, task, report)
        return cache[key]

    return get


# ---- test data ---------------------------------------------------------------------------------------------


def t5_ids(spm_path: Path, sentences):
    import sentencepiece

    processor = sentencepiece.SentencePieceProcessor(model_file=str(spm_path))
    return [processor.encode(sentence) + [1] for sentence in sentences]  # T5 appends </s> (id 1)


def to_fairseq(t5_id: int) -> int:
    """The converter's id mapping (see convert_hf_t5's module docstring)."""
    return {0: 1, 1: 2, 2: 3}.get(t5_id, t5_id + 1)


def pad_batch(rows, pad: int, left: bool) -> torch.Tensor:
    width = max(len(row) for row in rows)
    padded = [([pad] * (width - len(row)) + row) if left else (row + [pad] * (width - len(row))) for row in rows]
    return torch.tensor(padded)  # B x width


def hf_inputs(rows):
    """T5 ids -> transformers' right-padded input_ids and attention_mask."""
    mask = [[1] * len(row) for row in rows]
    return {"input_ids": pad_batch(rows, 0, left=False), "attention_mask": pad_batch(mask, 0, left=False)}


def sources(spm_path: Path):
    """Three German sentences of different lengths (a padded batch), as T5 ids ending in </s>."""
    return t5_ids(spm_path, [corpus_lines("valid", "de", 40)[i] for i in (0, 7, 19)] + ["Ja."])


# ---- conversion bookkeeping ------------------------------------------------------------------------------


def test_dictionary_matches_t5_ids_when_loaded_by_fairseq(converted, spm):
    import sentencepiece

    hf, model, task, report = converted("relu", True, "gmlm_t5")
    dictionary = task.target_dictionary
    processor = sentencepiece.SentencePieceProcessor(model_file=str(spm))
    pieces = processor.get_piece_size()
    assert len(dictionary) == hf.config.vocab_size + 1  # plus fairseq's <s>
    assert (dictionary.pad(), dictionary.eos(), dictionary.unk()) == (to_fairseq(0), to_fairseq(1), to_fairseq(2))
    for t5_id in range(3, pieces):
        assert dictionary.index(processor.id_to_piece(t5_id)) == to_fairseq(t5_id)
    extra_id = {n: pieces + EXTRA_IDS - 1 - n for n in range(EXTRA_IDS)}
    assert dictionary.index("<mask>") == to_fairseq(extra_id[0])
    assert dictionary.index("<length>") == to_fairseq(extra_id[1])
    assert dictionary.index("<extra_id_2>") == to_fairseq(extra_id[2])
    assert dictionary[to_fairseq(hf.config.vocab_size - 1)] == f"madeupword{UNUSED_ROWS - 1:04d}"
    assert report["fresh_dictionary_rows"] == {"<s>": 0}
    assert report["renamed_t5_tokens"] == {"<extra_id_0>": "<mask>", "<extra_id_1>": "<length>"}


def test_report_names_everything_not_converted(converted):
    _, _, _, gmlm_report = converted("gated-gelu", False, "gmlm_t5")
    assert gmlm_report["parameters_not_from_t5"] == ["length_head.length_embedding.weight"]
    assert gmlm_report["t5_tensors_left_out"] == [
        "decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight (ignored by Hugging Face T5 too)"
    ]
    assert gmlm_report["t5_tensors_transformed"] == [
        "decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight (one-directional -> bidirectional "
        "layout: left buckets from the causal biases of their distances, averaged where a bucket covers several; "
        "right buckets mirror the left)"
    ]
    _, _, _, ar_report = converted("relu", True, "t5_ar")
    assert ar_report["parameters_not_from_t5"] == []
    assert ar_report["t5_tensors_left_out"] == []
    assert ar_report["t5_tensors_transformed"] == []


def hf_position_table(hf, role: str) -> torch.Tensor:
    return getattr(hf, role).block[0].layer[0].SelfAttention.relative_attention_bias.weight.detach()


@pytest.mark.parametrize("kind,tied", [("relu", True), ("gated-gelu", False)], ids=["relu-tied", "gated-gelu-untied"])
def test_position_bias_tables_per_target(converted, kind, tied):
    """gmlm_t5's decoder reads its table bidirectionally: T5's one-directional decoder table is laid out anew
    (bidirectional_from_causal with config.json's 8 buckets / max distance 20), not copied. The encoder's
    bidirectional table, and both of t5_ar's, are copied as they are."""
    hf, gmlm, _, _ = converted(kind, tied, "gmlm_t5")
    hf_encoder, hf_decoder = hf_position_table(hf, "encoder"), hf_position_table(hf, "decoder")
    assert hf_decoder.shape == (8, 4)
    gmlm_decoder = gmlm.decoder.relative_position.relative_attention_bias.weight.detach()
    assert torch.equal(gmlm_decoder, bidirectional_from_causal(hf_decoder, num_buckets=8, max_distance=20))
    assert not torch.allclose(gmlm_decoder, hf_decoder)
    assert torch.equal(gmlm.encoder.relative_position.relative_attention_bias.weight.detach(), hf_encoder)

    _, ar, _, _ = converted(kind, tied, "t5_ar")
    assert torch.equal(ar.decoder.stack.relative_position.relative_attention_bias.weight.detach(), hf_decoder)
    assert torch.equal(ar.encoder.stack.relative_position.relative_attention_bias.weight.detach(), hf_encoder)


@pytest.mark.parametrize("kind,tied", CASES, ids=CASE_IDS)
def test_config_maps_onto_model_fields(converted, kind, tied):
    hf, model, _, report = converted(kind, tied, "t5_ar")
    cfg = model.cfg
    assert (cfg.d_model, cfg.num_heads, cfg.d_kv, cfg.d_ff) == (32, 4, 8, 48)
    assert (cfg.encoder_layers, cfg.decoder_layers) == (2, 3)
    assert str(cfg.feed_forward) == kind
    assert (cfg.relative_attention_num_buckets, cfg.relative_attention_max_distance) == (8, 20)
    assert cfg.tie_output_projection == tied
    assert (model.decoder.lm_head is None) == tied


def test_converter_names_the_unsupported_feed_forward(spm, tmp_path):
    hf = build_hf_t5(spm, "relu", True)
    hf_dir = save_hf_t5(hf, spm, tmp_path / "hf", True)
    config = json.loads((hf_dir / "config.json").read_text())
    config["feed_forward_proj"] = "gated-silu"
    (hf_dir / "config.json").write_text(json.dumps(config))
    with pytest.raises(convert_hf_t5.ConversionError, match="feed_forward_proj 'gated-silu'"):
        convert_hf_t5.convert(str(hf_dir), str(tmp_path / "out"), "t5_ar")


# ---- numerical equality with Hugging Face ----------------------------------------------------------------


@pytest.mark.parametrize("kind,tied", CASES, ids=CASE_IDS)
def test_t5_ar_encoder_equals_hf_on_padded_batch(converted, spm, kind, tied):
    hf, model, _, _ = converted(kind, tied, "t5_ar")
    rows = sources(spm)
    with torch.no_grad():
        expected = hf.encoder(**hf_inputs(rows)).last_hidden_state  # B x S x C
        src_tokens = pad_batch([[to_fairseq(t) for t in row] for row in rows], 1, left=True)  # fairseq left-pads
        out = model.encoder(src_tokens, torch.tensor([len(r) for r in rows]))["encoder_out"][0]  # B x S x C
    for b, row in enumerate(rows):
        ours = out[b, out.size(1) - len(row):]
        assert (ours - expected[b, : len(row)]).abs().max() <= TOLERANCE


@pytest.mark.parametrize("kind,tied", CASES, ids=CASE_IDS)
def test_gmlm_encoder_equals_hf_on_padded_batch(converted, spm, kind, tied):
    """gmlm_t5 prepends <length> (T5's <extra_id_1>): the HF encoder gets the same token first."""
    hf, model, task, _ = converted(kind, tied, "gmlm_t5")
    rows = sources(spm)
    length_t5_id = task.target_dictionary.index("<length>") - 1
    with torch.no_grad():
        hf_rows = [[length_t5_id] + row for row in rows]
        expected = hf.encoder(**hf_inputs(hf_rows)).last_hidden_state  # B x (1 + S) x C
        src_tokens = pad_batch([[to_fairseq(t) for t in row] for row in rows], 1, left=True)
        encoder_out = model.encode(src_tokens, torch.tensor([len(r) for r in rows]))
    for b, row in enumerate(hf_rows):
        assert not encoder_out.padding_mask[b, : len(row)].any()
        assert (encoder_out.out[b, : len(row)] - expected[b, : len(row)]).abs().max() <= TOLERANCE


def teacher_forcing_batch(spm):
    """Sources and target prefixes: T5 ids, fairseq's prev_output_tokens and T5's decoder_input_ids."""
    rows = sources(spm)
    targets = [row[:-1] for row in t5_ids(spm, [corpus_lines("valid", "en", 40)[i] for i in (0, 7, 19)] + ["Yes."])]
    prev_output_tokens = pad_batch([[2] + [to_fairseq(t) for t in row] for row in targets], 1, left=False)  # EOS first
    decoder_input_ids = pad_batch([[0] + row for row in targets], 0, left=False)  # T5 starts with pad
    return rows, targets, prev_output_tokens, decoder_input_ids


@pytest.mark.parametrize("kind,tied", CASES, ids=CASE_IDS)
def test_t5_ar_decoder_logits_equal_hf(converted, spm, kind, tied):
    hf, model, _, _ = converted(kind, tied, "t5_ar")
    assert_decoder_logits_equal(hf, model, spm)


def test_tied_unscaled_head_becomes_a_separate_copy(spm, tmp_path):
    """transformers 5 saves T5Config(tie_word_embeddings=False) as tied weights without output scaling."""
    hf = build_hf_t5(spm, "relu", True)
    hf.config.scale_decoder_outputs = False
    hf_dir = save_hf_t5(hf, spm, tmp_path / "hf", True)
    assert json.loads((hf_dir / "config.json").read_text())["scale_decoder_outputs"] is False
    report = convert_hf_t5.convert(str(hf_dir), str(tmp_path / "out"), "t5_ar", max_source=64, max_target=64)
    model, _ = load_converted(tmp_path / "out")
    assert model.decoder.lm_head is not None
    assert report["notes"] == ["separate output head: a copy of shared.weight (T5 ties it without scaling)"]
    assert_decoder_logits_equal(hf, model, spm)


def assert_decoder_logits_equal(hf, model, spm):
    rows, targets, prev_output_tokens, decoder_input_ids = teacher_forcing_batch(spm)
    vocab_map = torch.tensor([to_fairseq(t) for t in range(hf.config.vocab_size)])
    with torch.no_grad():
        expected = hf(**hf_inputs(rows), decoder_input_ids=decoder_input_ids).logits  # B x T x V_t5
        src_tokens = pad_batch([[to_fairseq(t) for t in row] for row in rows], 1, left=True)
        logits, _ = model(src_tokens, torch.tensor([len(r) for r in rows]), prev_output_tokens)  # B x T x V_fairseq
    ours = logits[..., vocab_map]  # columns in T5 order
    for b, row in enumerate(targets):
        # logits reach |10| (v1.1's unscaled head): float32 rounding is relative, so is the tolerance here
        torch.testing.assert_close(ours[b, : len(row) + 1], expected[b, : len(row) + 1], rtol=TOLERANCE, atol=TOLERANCE)


@pytest.mark.parametrize("kind,tied", [("gated-gelu", False), ("relu", True)], ids=["gated-gelu-untied", "relu-tied"])
def test_t5_ar_cached_steps_equal_full_decoder(converted, spm, kind, tied):
    _, model, _, _ = converted(kind, tied, "t5_ar")
    rows, _, prev_output_tokens, _ = teacher_forcing_batch(spm)
    with torch.no_grad():
        src_tokens = pad_batch([[to_fairseq(t) for t in row] for row in rows], 1, left=True)
        encoder_out = model.encoder(src_tokens)
        full, _ = model.decoder(prev_output_tokens, encoder_out)  # B x T x V
        state = {}
        steps = [model.decoder(prev_output_tokens[:, : t + 1], encoder_out, incremental_state=state)[0]
                 for t in range(prev_output_tokens.size(1))]
    # v1.1's unscaled head gives logits beyond |20|: float32 rounding of the differently shaped (cached)
    # products is relative, so is the tolerance (as in assert_decoder_logits_equal)
    torch.testing.assert_close(torch.cat(steps, 1), full, rtol=TOLERANCE, atol=TOLERANCE)


@pytest.mark.parametrize("kind,tied", CASES, ids=CASE_IDS)
def test_greedy_sequence_generator_equals_hf_generate(converted, spm, kind, tied):
    hf, model, task, _ = converted(kind, tied, "t5_ar")
    rows = sources(spm)
    max_new = 12
    with torch.no_grad():
        # fairseq never emits <pad> and, with its default min_len=1, no </s> at the first step: ask HF the same.
        # use_cache=False: transformers 5.24 sizes its generation cache by num_layers, not num_decoder_layers.
        hf_out = hf.generate(
            **hf_inputs(rows), num_beams=1, do_sample=False, max_new_tokens=max_new, min_new_tokens=1,
            suppress_tokens=[0], use_cache=False,
        )
        generator = SequenceGenerator([model], task.target_dictionary, beam_size=1, max_len_a=0, max_len_b=max_new)
        src_tokens = pad_batch([[to_fairseq(t) for t in row] for row in rows], 1, left=True)
        hypotheses = generator.generate(
            [model], {"net_input": {"src_tokens": src_tokens, "src_lengths": torch.tensor([len(r) for r in rows])}}
        )
    for b in range(len(rows)):
        ours = hypotheses[b][0]["tokens"].tolist()
        theirs = [to_fairseq(t) for t in hf_out[b, 1:].tolist()]  # drop T5's decoder start
        assert until_eos(ours) == until_eos(theirs), f"sentence {b}"


def until_eos(tokens, eos: int = 2):
    return tokens[: tokens.index(eos)] if eos in tokens else tokens


def test_beam_search_scores_equal_teacher_forced_log_probs(converted, spm):
    """Beam search reorders and shrinks the cached keys/values; its per-token scores must still be the model's."""
    _, model, task, _ = converted("gated-gelu", False, "t5_ar")
    rows = sources(spm)
    src_tokens = pad_batch([[to_fairseq(t) for t in row] for row in rows], 1, left=True)
    src_lengths = torch.tensor([len(r) for r in rows])
    with torch.no_grad():
        generator = SequenceGenerator([model], task.target_dictionary, beam_size=3, max_len_a=0, max_len_b=8)
        hypotheses = generator.generate([model], {"net_input": {"src_tokens": src_tokens, "src_lengths": src_lengths}})
        for b in range(len(rows)):
            for hypothesis in hypotheses[b]:
                tokens = hypothesis["tokens"][None, :]  # 1 x T, ends with </s>
                prev = torch.cat([tokens.new_full((1, 1), task.target_dictionary.eos()), tokens[:, :-1]], 1)
                logits, _ = model(src_tokens[b : b + 1], src_lengths[b : b + 1], prev)
                log_probs = torch.log_softmax(logits.float(), -1).gather(-1, tokens[..., None])[0, :, 0]
                assert (log_probs - hypothesis["positional_scores"]).abs().max() <= 1e-4


# ---- fine-tuning through the real CLI --------------------------------------------------------------------


def run_cli(tool: str, *args):
    command = [str(Path(sys.executable).parent / tool), *map(str, args)]
    environment = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=environment)
    assert result.returncode == 0, f"{tool} failed ({result.returncode}):\n{result.stderr[-4000:]}"
    return result


@pytest.fixture(scope="module")
def cli_setup(spm, tmp_path_factory):
    """A v1.1-style T5 converted for both targets (gmlm_t5 through the script's command line) and a small
    slice of the Ding corpus encoded with its sentencepiece model and binarised with the converted dict.txt."""
    import sentencepiece

    work = tmp_path_factory.mktemp("cli")
    hf = build_hf_t5(spm, "gated-gelu", False)
    hf_dir = save_hf_t5(hf, spm, work / "hf", False)
    run_cli("python", "-m", "fairseq_gmlm.cli.convert_hf_t5", "--hf-dir", hf_dir, "--out", work / "gmlm",
            "--target", "gmlm_t5", "--max-target-positions", "64", "--max-source-positions", "64")
    convert_hf_t5.convert(str(hf_dir), str(work / "ar"), "t5_ar", max_source=64, max_target=64)
    assert (work / "gmlm" / "dict.txt").read_text() == (work / "ar" / "dict.txt").read_text()

    processor = sentencepiece.SentencePieceProcessor(model_file=str(work / "gmlm" / "spiece.model"))
    pieces = work / "pieces"
    pieces.mkdir()
    for split, count in (("train", 160), ("valid", 12)):
        for lang in ("de", "en"):
            encoded = [" ".join(processor.encode(line, out_type=str)) for line in corpus_lines(split, lang, count)]
            (pieces / f"{split}.{lang}").write_text("\n".join(encoded) + "\n")
    run_cli("fairseq-preprocess", "--source-lang", "de", "--target-lang", "en", "--trainpref", pieces / "train",
            "--validpref", pieces / "valid", "--destdir", work / "bin", "--srcdict", work / "gmlm" / "dict.txt",
            "--tgtdict", work / "gmlm" / "dict.txt", "--workers", "1")
    return hf, work


COMMON_TRAIN_FLAGS = ("--dropout", "0", "--optimizer", "adam", "--batch-size", "32", "--log-format", "json",
                      "--log-interval", "1", "--cpu", "--num-workers", "0", "--seed", "1", "--disable-validation")


def train_losses(log: str):
    return [float(json.loads(line[line.index("{"):])["loss"]) for line in log.splitlines() if "| train_inner |" in line]


@pytest.mark.slow
def test_gmlm_t5_fine_tunes_from_converted_checkpoint(cli_setup):
    hf, work = cli_setup
    checkpoint = work / "gmlm" / "checkpoint.pt"
    # the checkpoint loads with fairseq's own loader against the binarised data
    models, _ = checkpoint_utils.load_model_ensemble(
        [str(checkpoint)], arg_overrides={"data": str(work / "bin"), "source_lang": "de", "target_lang": "en"}
    )
    assert models[0].embed_tokens.weight.size(0) == hf.config.vocab_size + 1

    flags = (work / "gmlm" / "model_flags.txt").read_text().split()
    result = run_cli(
        "fairseq-train", work / "bin", "--user-dir", ROOT / "fairseq_gmlm", "--task", "translation_gmlm",
        "--criterion", "gmlm_loss", *flags, "--finetune-from-model", checkpoint, "--mask-ratio", "0.5",
        "--lr", "0.003", "--max-update", "15", "--no-save", *COMMON_TRAIN_FLAGS,
    )
    log = result.stdout + result.stderr
    assert f"loading pretrained model from {checkpoint}" in log
    assert f"Loaded checkpoint {checkpoint}" in log
    losses = train_losses(log)
    assert len(losses) == 15, log[-3000:]
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3 - 0.5, losses


@pytest.mark.slow
def test_t5_ar_restores_trains_and_beam_decodes_through_the_cli(cli_setup):
    _, work = cli_setup
    checkpoint = work / "ar" / "checkpoint.pt"
    flags = (work / "ar" / "model_flags.txt").read_text().split()
    save_dir = work / "ar-trained"
    result = run_cli(
        "fairseq-train", work / "bin", "--user-dir", ROOT / "fairseq_gmlm", "--task", "translation",
        "--criterion", "label_smoothed_cross_entropy", "--label-smoothing", "0.1", *flags,
        "--restore-file", checkpoint, "--lr", "0.001", "--max-update", "3", "--save-dir", save_dir,
        "--no-epoch-checkpoints", *COMMON_TRAIN_FLAGS,
    )
    log = result.stdout + result.stderr
    assert f"Loaded checkpoint {checkpoint}" in log
    assert len(train_losses(log)) == 3
    generated = run_cli(
        "fairseq-generate", work / "bin", "--user-dir", ROOT / "fairseq_gmlm", "--task", "translation",
        "--path", save_dir / "checkpoint_last.pt", "--gen-subset", "valid", "--beam", "2", "--max-len-a", "0",
        "--max-len-b", "8", "--batch-size", "4", "--required-batch-size-multiple", "1", "--cpu",
    ).stdout
    assert len([line for line in generated.splitlines() if line.startswith("H-")]) == 12
