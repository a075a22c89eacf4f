import torch

from conftest import build_from_flags, build_task_and_model
import pytest

from fairseq_gmlm.models.t5_layers import (attend, bidirectional_from_causal, bucket_grid, diverse_relative_bias,
                                          preferred_offsets, relative_position_bucket)


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



BUCKET_SHAPES = [(32, 128), (8, 16)]
BUCKET_SHAPE_IDS = ["32-buckets-128", "8-buckets-16"]


def left_bucket_distances(num_buckets, max_distance):
    """Bidirectional left bucket -> the causal buckets of the distances 0..max_distance it covers, straight
    from relative_position_bucket (independent of bidirectional_from_causal)."""
    covered = {}
    for d in range(max_distance + 1):
        left = relative_position_bucket(torch.tensor(-d), True, num_buckets, max_distance).item()
        causal = relative_position_bucket(torch.tensor(-d), False, num_buckets, max_distance).item()
        covered.setdefault(left, []).append(causal)
    return covered


@pytest.mark.parametrize("num_buckets,max_distance", BUCKET_SHAPES, ids=BUCKET_SHAPE_IDS)
def test_bidirectional_from_causal_keeps_exact_left_offsets(num_buckets, max_distance):
    torch.manual_seed(0)
    causal_table = torch.randn(num_buckets, 4)
    mapped = bidirectional_from_causal(causal_table, num_buckets, max_distance)
    assert mapped.shape == causal_table.shape
    for d in range(num_buckets // 4):  # exact in both layouts
        left = relative_position_bucket(torch.tensor(-d), True, num_buckets, max_distance).item()
        causal = relative_position_bucket(torch.tensor(-d), False, num_buckets, max_distance).item()
        assert left == d and causal == d
        torch.testing.assert_close(mapped[left], causal_table[causal])


@pytest.mark.parametrize("num_buckets,max_distance", BUCKET_SHAPES, ids=BUCKET_SHAPE_IDS)
def test_bidirectional_from_causal_coarse_left_buckets_lie_within_their_distances(num_buckets, max_distance):
    torch.manual_seed(1)
    causal_table = torch.randn(num_buckets, 4)
    mapped = bidirectional_from_causal(causal_table, num_buckets, max_distance)
    coarse = {bucket: rows for bucket, rows in left_bucket_distances(num_buckets, max_distance).items() if len(rows) > 1}
    assert coarse  # the shapes do have buckets covering several distances
    for bucket, rows in coarse.items():
        values = causal_table[torch.tensor(rows)]  # distances x H
        low, high = values.min(0).values, values.max(0).values
        assert (mapped[bucket] >= low - 1e-6).all() and (mapped[bucket] <= high + 1e-6).all(), bucket
        assert torch.allclose(mapped[bucket], values.mean(0), atol=1e-6), bucket


@pytest.mark.parametrize("num_buckets,max_distance", BUCKET_SHAPES, ids=BUCKET_SHAPE_IDS)
def test_bidirectional_from_causal_mirrors_right_offsets(num_buckets, max_distance):
    torch.manual_seed(2)
    mapped = bidirectional_from_causal(torch.randn(num_buckets, 3), num_buckets, max_distance)
    for d in range(1, 2 * max_distance):
        right = relative_position_bucket(torch.tensor(d), True, num_buckets, max_distance).item()
        left = relative_position_bucket(torch.tensor(-d), True, num_buckets, max_distance).item()
        assert right >= num_buckets // 2 > left
        torch.testing.assert_close(mapped[right], mapped[left])


@pytest.mark.parametrize("num_buckets,max_distance", BUCKET_SHAPES, ids=BUCKET_SHAPE_IDS)
def test_bidirectional_from_causal_does_not_copy_rows(num_buckets, max_distance):
    """Row i of the causal table holds i: the far-left causal rows must not reach right-hand buckets."""
    causal_table = torch.arange(num_buckets, dtype=torch.float)[:, None].repeat(1, 2)
    mapped = bidirectional_from_causal(causal_table, num_buckets, max_distance)
    assert not torch.equal(mapped, causal_table)
    half = num_buckets // 2
    # every row, left or right, averages causal buckets of left distances only: +d reads what -d reads
    for d in range(1, max_distance + 1):
        causal = relative_position_bucket(torch.tensor(-d), False, num_buckets, max_distance).item()
        right = relative_position_bucket(torch.tensor(d), True, num_buckets, max_distance).item()
        left = relative_position_bucket(torch.tensor(-d), True, num_buckets, max_distance).item()
        assert right - half == left
        if d < num_buckets // 4:
            assert mapped[right, 0].item() == causal == d  # a copy would give half + d here
    far_left = relative_position_bucket(torch.tensor(-max_distance), True, num_buckets, max_distance).item()
    assert mapped[far_left, 0].item() > mapped[half - 2, 0].item() >= num_buckets // 4


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


def decoder_logits(model, d, scale_row=None):
    """Decoder logits for a fixed source and target; SCALE_ROW: (word id, factor) applied to its embedding first."""
    if scale_row is not None:
        with torch.no_grad():
            model.embed_tokens.weight[scale_row[0]] *= scale_row[1]
    src = torch.tensor([[d.index("w1"), d.index("w2"), d.index("w3"), d.eos()]])
    tgt = torch.tensor([[d.index("w4"), model.mask_idx, d.index("w6"), d.eos()]])
    return model.decode(tgt, model.encode(src))


def test_tied_output_projection_scores_each_word_with_its_embedding_and_trains_it(tmp_path):
    task, model, _ = build_task_and_model(tmp_path, "--tie-output-projection", "--dropout", "0")
    model.eval()
    d = task.target_dictionary
    unused = d.index("w20")  # in neither the source nor the target
    before = decoder_logits(model, d).detach()
    after = decoder_logits(model, d, scale_row=(unused, 3.0))
    others = torch.arange(before.size(-1)) != unused
    torch.testing.assert_close(after[..., unused], 3 * before[..., unused])
    torch.testing.assert_close(after[..., others], before[..., others])
    after[..., unused].sum().backward()
    assert model.embed_tokens.weight.grad[unused].abs().sum() > 0
    # unit-scale embedding rows against an RMS-normalised state: the d_model^-0.5 factor keeps logits near unit scale
    assert 0.3 < before.std().item() < 3.0


def test_untied_output_projection_ignores_the_token_embedding_of_unused_words(tmp_path):
    task, model, _ = build_task_and_model(tmp_path, "--dropout", "0")
    model.eval()
    d = task.target_dictionary
    before = decoder_logits(model, d).detach()
    torch.testing.assert_close(decoder_logits(model, d, scale_row=(d.index("w20"), 3.0)).detach(), before)


def test_bidirectional_buckets_tell_a_key_to_the_right_from_one_at_the_same_distance_to_the_left():
    for num_buckets, max_distance in BUCKET_SHAPES:
        for d in range(1, 3 * max_distance):
            right = relative_position_bucket(torch.tensor(d), True, num_buckets, max_distance).item()
            left = relative_position_bucket(torch.tensor(-d), True, num_buckets, max_distance).item()
            assert right != left and right == left + num_buckets // 2, d


def test_decoder_self_attention_bias_is_bidirectional(tmp_path):
    _, model, _ = build_task_and_model(tmp_path)
    relative = model.decoder.relative_position
    table = relative.relative_attention_bias.weight  # buckets x H
    bias = relative(6, 6)[0]  # H x T x T
    for d in range(1, 6):
        right = relative_position_bucket(torch.tensor(d), True, 32, 128).item()
        left = relative_position_bucket(torch.tensor(-d), True, 32, 128).item()
        torch.testing.assert_close(bias[:, 0, d], table[right])  # query 0, key d to its right
        torch.testing.assert_close(bias[:, d, 0], table[left])
        assert not torch.allclose(bias[:, 0, d], bias[:, d, 0])
    # keys to the right at different distances differ (a causal layout puts them all in bucket 0) and none is masked
    assert len({tuple(bias[:, 0, d].tolist()) for d in range(1, 6)}) == 5
    assert bias.isfinite().all() and bias.abs().max() < 100


@pytest.mark.parametrize("std", [0.0, 5.0])
def test_relative_attention_init_std_sets_the_spread_of_both_position_tables(tmp_path, std):
    _, model, _ = build_task_and_model(tmp_path, "--relative-attention-init-std", str(std))
    _, default, _ = build_task_and_model(tmp_path / "default")
    for name in ("encoder", "decoder"):
        table = getattr(model, name).relative_position.relative_attention_bias.weight  # 32 x 4
        default_table = getattr(default, name).relative_position.relative_attention_bias.weight
        if std == 0.0:
            assert not table.any()
        else:
            assert 4.0 < table.std().item() < 6.0
        assert 1.6 < default_table.std().item() < 2.4  # the default, 2.0
    torch.testing.assert_close(model.embed_tokens.weight, default.embed_tokens.weight)  # only the tables change


@pytest.mark.parametrize("bidirectional", [True, False])
@pytest.mark.parametrize("num_buckets,max_distance", BUCKET_SHAPES, ids=BUCKET_SHAPE_IDS)
def test_diverse_table_peaks_each_head_at_its_own_offset(bidirectional, num_buckets, max_distance):
    table = diverse_relative_bias(4, bidirectional, num_buckets, max_distance)  # buckets x 4
    offsets = preferred_offsets(4, bidirectional)
    assert offsets == ([-1, 1, 0, -2] if bidirectional else [-1, 0, -2, -4])
    for head, offset in enumerate(offsets):
        peak = relative_position_bucket(torch.tensor(offset), bidirectional, num_buckets, max_distance).item()
        assert table[peak, head] == 3.0 and (table[:, head] < 3.0).sum() == num_buckets - 1
        near = relative_position_bucket(torch.tensor(offset - 1), bidirectional, num_buckets, max_distance).item()
        assert table[near, head] == (3.0 if near == peak else 2.0)  # one word farther left: a log bucket shares it
    assert len({tuple(column.tolist()) for column in table.t()}) == 4  # no two heads alike
    assert table.min() == -3.0  # far buckets get the floor
    torch.manual_seed(0)
    first = diverse_relative_bias(4, bidirectional, num_buckets, max_distance)
    torch.manual_seed(1)
    assert torch.equal(first, diverse_relative_bias(4, bidirectional, num_buckets, max_distance))  # no random draw


def test_preferred_offsets_alternate_sides_and_double_for_more_heads():
    assert preferred_offsets(8, True) == [-1, 1, 0, -2, 2, -4, 4, -8]
    assert preferred_offsets(8, False) == [-1, 0, -2, -4, -8, -16, -32, -64]


@pytest.mark.parametrize("arch", ["gmlm_t5_tiny", "t5_ar_tiny"])
def test_relative_attention_init_diverse_starts_both_tables_from_the_deterministic_table(tmp_path, arch):
    flags = ("--relative-attention-init", "diverse")
    if arch == "t5_ar_tiny":
        _, model, _ = build_from_flags(tmp_path, ["--task", "translation", "--arch", arch, *flags])
    else:
        _, model, _ = build_task_and_model(tmp_path, *flags, arch=arch)
    for name, bidirectional in (("encoder", True), ("decoder", arch == "gmlm_t5_tiny")):
        stack = getattr(model, name)
        table = getattr(stack, "stack", stack).relative_position.relative_attention_bias.weight  # 32 x 4
        torch.testing.assert_close(table.detach(), diverse_relative_bias(4, bidirectional, 32, 128))
        assert table.requires_grad  # a starting point, still trained


@pytest.mark.parametrize("query_length,key_length,offset,bidirectional", [(7, 7, 0, True), (1, 9, 8, False), (3, 40, 5, True)])
def test_cached_bucket_grid_equals_the_buckets_of_each_key_minus_query_offset(query_length, key_length, offset,
                                                                              bidirectional):
    grid = bucket_grid(query_length, key_length, offset, bidirectional, 32, 128, torch.device("cpu"))
    offsets = torch.arange(key_length)[None, :] - (torch.arange(query_length)[:, None] + offset)
    assert torch.equal(grid, relative_position_bucket(offsets, bidirectional, 32, 128))
    assert bucket_grid(query_length, key_length, offset, bidirectional, 32, 128, torch.device("cpu")) is grid


def test_a_bucket_grid_first_built_while_decoding_in_inference_mode_serves_training(tmp_path):
    task, model, _ = build_task_and_model(tmp_path)
    d = task.target_dictionary
    src = torch.tensor([[d.index(w) for w in ("w1", "w2", "w3", "w4", "w5", "w6", "w7")] + [d.eos()]])  # a new length
    bucket_grid.cache_clear()
    with torch.inference_mode():
        model.eval()
        model.encode(src)
    model.train()
    model.encode(src).out.sum().backward()  # raises if the cached grid were an inference tensor
    assert model.encoder.relative_position.relative_attention_bias.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("autocast", [False, True])
def test_bfloat16_attention_on_the_cpu_runs_in_float32_and_returns_bfloat16(autocast, monkeypatch):
    kernel, computed_in = torch.nn.functional.scaled_dot_product_attention, []

    def spy(q, *args, **kwargs):
        computed_in.append(q.dtype)
        return kernel(q, *args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", spy)
    generator = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 4, 5, 8, generator=generator) for _ in range(3))  # B x H x L x D
    bias = torch.randn(1, 4, 5, 5, generator=generator)
    expected = torch.softmax(q @ k.transpose(-1, -2) + bias, -1) @ v  # unscaled, as T5 attends
    leaves = [x.bfloat16().requires_grad_() for x in (q, k, v)]
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        out = attend(*leaves, bias.bfloat16(), dropout=0.0)
    assert out.dtype == torch.bfloat16 and computed_in == [torch.float32]
    torch.testing.assert_close(out.float(), expected, atol=0.05, rtol=0.05)
    out.float().sum().backward()
    assert all(leaf.grad.dtype == torch.bfloat16 and leaf.grad.abs().sum() > 0 for leaf in leaves)
    torch.testing.assert_close(attend(q, k, v, bias, dropout=0.0), expected)  # float32 unchanged
