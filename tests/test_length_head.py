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
