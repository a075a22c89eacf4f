"""The BLEU share of the benchmark's quality target and its paired bootstrap interval (benchmarks/harness/shares.py)."""

import random

import pytest
import sacrebleu

from benchmarks.harness.shares import bleu_share, corpus_bleu, sentence_statistics, target_shares

WORDS = "the a cat dog sat ran on under mat table house garden red green big small quickly slowly".split()


def references(count: int, seed: int = 0) -> list:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 14))) + f" {index}." for index in range(count)]


def damaged(lines: list, share: float, seed: int) -> list:
    """LINES with about SHARE of their words replaced by a word from outside the references."""
    rng = random.Random(seed)
    return [" ".join("zebra" if rng.random() < share else word for word in line.split()) for line in lines]


def test_summed_sentence_statistics_give_sacrebleus_corpus_bleu():
    refs = references(200)
    hyps = damaged(refs, 0.3, seed=1)
    assert corpus_bleu(sentence_statistics(hyps, refs)) == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs]).score,
                                                                         abs=1e-9)


def test_a_system_against_itself_has_a_share_of_one_on_every_draw():
    refs = references(100)
    hyps = damaged(refs, 0.3, seed=1)
    share = bleu_share(hyps, hyps, refs, resamples=200)
    assert share["share"] == share["low"] == share["high"] == pytest.approx(1.0)


def test_the_share_is_the_ratio_of_the_corpus_bleus_and_lies_inside_its_interval():
    refs = references(300)
    better, worse = damaged(refs, 0.15, seed=1), damaged(refs, 0.4, seed=2)
    share = bleu_share(worse, better, refs, resamples=300)
    expected = sacrebleu.corpus_bleu(worse, [refs]).score / sacrebleu.corpus_bleu(better, [refs]).score
    assert share["share"] == pytest.approx(expected)
    assert share["low"] < share["share"] < share["high"] < 1  # the better system is better on every likely draw
    assert share == bleu_share(worse, better, refs, resamples=300)  # the draws are seeded


def test_four_times_the_sentences_keep_the_share_and_halve_the_interval():
    refs = references(150)
    ours, theirs = damaged(refs, 0.35, seed=3), damaged(refs, 0.2, seed=4)
    one = bleu_share(ours, theirs, refs, resamples=400)
    four = bleu_share(ours * 4, theirs * 4, refs * 4, resamples=400)
    assert four["share"] == pytest.approx(one["share"])
    ratio = (four["high"] - four["low"]) / (one["high"] - one["low"])
    assert 0.35 < ratio < 0.65  # the width of a mean's interval falls as one over the root of the sentences


def test_mismatched_lines_a_zero_bleu_baseline_and_a_bad_level_are_refused():
    refs = references(20)
    with pytest.raises(ValueError, match="20 references"):
        bleu_share(refs[:19], refs, refs)
    with pytest.raises(ValueError, match="19 hypotheses for 20 references"):
        bleu_share(refs, refs[:19], refs)
    with pytest.raises(ValueError, match="BLEU is 0"):
        bleu_share(refs, ["zebra"] * 20, refs)
    with pytest.raises(ValueError, match="level"):
        bleu_share(refs, refs, refs, level=95)


def test_target_shares_read_the_evaluation_hypotheses_and_say_where_the_baseline_scores_zero(tmp_path):
    refs = references(50)
    (tmp_path / "refs.a.txt").write_text("\n".join(refs) + "\n")
    (tmp_path / "refs.b.txt").write_text("\n".join(refs) + "\n")
    (tmp_path / "a.gmlm.txt").write_text("\n".join(damaged(refs, 0.4, seed=5)) + "\n")
    (tmp_path / "a.ar.txt").write_text("\n".join(damaged(refs, 0.2, seed=6)) + "\n")
    (tmp_path / "b.gmlm.txt").write_text("\n".join(damaged(refs, 0.4, seed=5)) + "\n")
    (tmp_path / "b.ar.txt").write_text("zebra\n" * 50)
    tests = {"a": {"reference": str(tmp_path / "refs.a.txt")}, "b": {"reference": str(tmp_path / "refs.b.txt")}}
    shares = target_shares(tmp_path, tests, "gmlm", "ar")
    assert shares["a"]["low"] < shares["a"]["share"] < shares["a"]["high"] < 1
    assert shares["b"] == {"share": None, "low": None, "high": None, "baseline_bleu": 0.0, "resamples": 1000,
                           "level": 0.95}
