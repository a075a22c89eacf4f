import torch
import torch.nn.functional as F

from conftest import build_task_and_model
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
