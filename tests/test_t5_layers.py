import torch

from conftest import build_task_and_model
from fairseq_gmlm.models.t5_layers import relative_position_bucket


def buckets(offsets, bidirectional):
    return relative_position_bucket(torch.tensor(offsets), bidirectional, num_buckets=32, max_distance=128).tolist()


def test_bidirectional_buckets_match_t5_formula_on_known_offsets():
    # 16 buckets per direction, 8 exact; keys to the right (offset > 0) use ids 16..31.
    # -16: 8 + floor(8 * log(16/8) / log(128/8)) = 10; +20: 16 + 8 + floor(8 * log(2.5) / log(16)) = 26.
    offsets = [0, -1, -7, -8, -16, -127, -128, -1000, 1, 7, 20, 128]
    assert buckets(offsets, True) == [0, 1, 7, 8, 10, 15, 15, 15, 17, 23, 26, 31]


def test_unidirectional_buckets_match_t5_formula_on_known_offsets():
    # 32 buckets, 16 exact, keys to the right all share bucket 0; -32: 16 + floor(16 * log 2 / log 8) = 21.
    offsets = [0, 3, -3, -15, -16, -32, -128, -5000]
    assert buckets(offsets, False) == [0, 0, 3, 15, 16, 21, 31, 31]


def test_decoder_is_not_causal_when_a_later_target_token_changes(tmp_path):
    task, model, _ = build_task_and_model(tmp_path)
    model.eval()
    d = task.target_dictionary
    src = torch.tensor([[d.index("w1"), d.index("w2"), d.index("w3"), d.eos()]])
    tgt = torch.tensor([[d.index("w4"), d.index("w5"), d.index("w6"), d.eos()]])
    changed = tgt.clone()
    changed[0, 2] = d.index("w9")
    encoder_out = model.encode(src)
    first = model.decode(tgt, encoder_out)[0, 0]
    second = model.decode(changed, encoder_out)[0, 0]
    assert not torch.allclose(first, second, atol=1e-6)


def test_encoder_output_is_unaffected_by_padding_when_left_or_right_padded(tmp_path):
    task, model, _ = build_task_and_model(tmp_path)
    model.eval()
    d = task.target_dictionary
    words = [d.index(f"w{i}") for i in (3, 1, 4, 1, 5)] + [d.eos()]
    alone = model.encode(torch.tensor([words])).out[0]  # (1 + 6) x C
    pad = d.pad()
    left = torch.tensor([[pad] * 3 + words, [d.index("w7")] * 8 + [d.eos()]])
    right = torch.tensor([words + [pad] * 3, [d.index("w7")] * 8 + [d.eos()]])
    for batch in (left, right):
        out = model.encode(batch)
        assert torch.allclose(out.out[0, : len(words) + 1], alone, atol=1e-5)
        assert out.padding_mask[0].sum() == 3


def test_tied_output_projection_reuses_the_embedding(tmp_path):
    task, model, _ = build_task_and_model(tmp_path, "--tie-output-projection")
    assert model.lm_head is None
    hidden = torch.randn(1, 2, model.cfg.d_model)
    expected = hidden * model.cfg.d_model**-0.5 @ model.embed_tokens.weight.t()
    assert torch.allclose(model.output_projection(hidden), expected)
