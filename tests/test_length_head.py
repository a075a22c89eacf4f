import pytest
import torch

from fairseq_gmlm.models.length_head import LengthHead


def test_length_head_scores_every_length_class_with_its_table_row():
    torch.manual_seed(0)
    head = LengthHead(d_model=64, max_target_positions=200)
    state = torch.randn(3, 64)
    logits = head(state)
    assert logits.shape == (3, 201)  # classes 0 ... 200: a target of 200 tokens with EOS is representable
    torch.testing.assert_close(logits[:, 57], state @ head.length_embedding.weight[57])


def test_length_table_starts_at_the_t5_scale_so_initial_logits_are_near_unit_scale():
    torch.manual_seed(0)
    head = LengthHead(d_model=64, max_target_positions=200)
    assert abs(head.length_embedding.weight.std().item() - 64**-0.5) < 0.01
    state = torch.randn(500, 64)  # about unit-scale rows, like the RMS-normalised encoder output
    assert 0.8 < head(state).std().item() < 1.2


# ---- offsets from the source length (--pred-length-offset) ------------------------------------------------------

def test_offset_head_scores_each_length_with_the_row_of_its_offset_from_the_source():
    torch.manual_seed(0)
    head = LengthHead(d_model=64, max_target_positions=200, max_source_positions=100)
    assert head.length_embedding.weight.shape == (301, 64)  # offsets -100 ... +200
    state = torch.randn(2, 64)
    logits = head(state, torch.tensor([10, 37]))
    assert logits.shape == (2, 201)  # absolute length classes, as without offsets
    offset_zero = 100  # the table's row for "as long as the source"
    torch.testing.assert_close(logits[0, 12], state[0] @ head.length_embedding.weight[offset_zero + 2])
    torch.testing.assert_close(logits[1, 30], state[1] @ head.length_embedding.weight[offset_zero - 7])
    torch.testing.assert_close(logits[1, 0], state[1] @ head.length_embedding.weight[offset_zero - 37])


def test_offset_head_moves_its_distribution_with_the_source_length_and_the_plain_head_does_not():
    torch.manual_seed(0)
    state = torch.randn(1, 64).expand(2, 64)  # one <length> state, two source lengths
    offset = LengthHead(d_model=64, max_target_positions=200, max_source_positions=100)(state, torch.tensor([20, 25]))
    torch.testing.assert_close(offset[1, 5:], offset[0, :-5])  # five source tokens more: five target tokens more
    assert offset[0].argmax() + 5 == offset[1].argmax()
    plain = LengthHead(d_model=64, max_target_positions=200)(state)
    torch.testing.assert_close(plain[0], plain[1])


def test_offset_head_reads_sources_longer_than_its_table_as_the_longest_it_has():
    head = LengthHead(d_model=8, max_target_positions=50, max_source_positions=40)
    state = torch.randn(1, 8).expand(2, 8)  # one <length> state, two source lengths past the table's 40
    logits = head(state, torch.tensor([40, 90]))
    torch.testing.assert_close(logits[0], logits[1])


def test_offset_head_without_source_lengths_is_refused_naming_the_flag():
    head = LengthHead(d_model=8, max_target_positions=50, max_source_positions=40)
    with pytest.raises(ValueError, match="--pred-length-offset"):
        head(torch.randn(2, 8))
