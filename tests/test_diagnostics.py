"""Refinement diagnostics: the statistics on hand-made token lists, the generator's trace, and
gmlm-diagnose (fairseq_gmlm/cli/diagnose.py) end to end on a real fairseq-generate output."""

import json
import math
from argparse import Namespace

import pytest
import torch

from conftest import PLUGIN, build_task_and_model, run_cli
from fairseq_gmlm.diagnostics import (
    Trajectory, converged_at, format_report, length_statistics, pass_statistics, read_trajectories,
    repeated_ngrams, stutters, tokens_changed, total_changes,
)
from test_gmlm_loss import make_sample

from fairseq_gmlm.cli import diagnose


# ---- pure statistics -------------------------------------------------------------------------------------


def test_tokens_changed_counts_differing_positions_and_a_length_difference():
    assert tokens_changed("a b c".split(), "a x c".split()) == 1
    assert tokens_changed("a b c".split(), "a b c".split()) == 0
    assert tokens_changed(["a"], "a b c".split()) == 2


def test_stutters_count_each_token_equal_to_its_left_neighbour():
    assert stutters("a a b b b c".split()) == 3
    assert stutters("a b a b".split()) == 0
    assert stutters([]) == 0


def test_repeated_ngrams_count_occurrences_after_the_first():
    assert repeated_ngrams("a b a b a".split(), 2) == 2  # "a b" and "b a" each come back once
    assert repeated_ngrams("a b a b a".split(), 3) == 1  # "a b a" twice
    assert repeated_ngrams("a b".split(), 3) == 0
    assert repeated_ngrams("a a a a".split(), 1) == 3


def test_converged_when_a_pass_changes_nothing_and_stays_so_after_the_candidate_stopped():
    passes = [["a", "b"], ["a", "c"], ["a", "c"]]
    assert [converged_at(passes, i) for i in range(5)] == [False, False, True, True, True]
    assert not converged_at([["a"]], 0)  # one pass: the first prediction is never "converged"


def two_sentences():
    # Sentence 0 stops after 2 passes (its 2nd pass changed nothing); sentence 1 runs 3 passes.
    return [
        Trajectory(id=0, passes=[["x", "x"], ["x", "x"]], probabilities=[[0.5, 0.1], [0.7, 0.3]],
                   predicted_length=3, output_length=2, reference_length=4),
        Trajectory(id=1, passes=[["a", "b", "a", "b"], ["a", "c", "a", "b"], ["d", "c", "a", "b"]],
                   probabilities=[[0.2] * 4, [0.4] * 4, [0.9, 0.8, 0.6, 1.0]],
                   predicted_length=5, output_length=5, reference_length=5),
    ]


def test_pass_statistics_on_hand_made_trajectories():
    first, second, third = pass_statistics(two_sentences(), orders=(2,))
    assert [p.step for p in (first, second, third)] == [1, 2, 3]
    assert [p.running for p in (first, second, third)] == [2, 2, 1]
    assert first.words == second.words == third.words == 6
    assert first.changed is None
    assert second.changed == pytest.approx(1 / 6) and third.changed == pytest.approx(1 / 6)
    assert [first.converged, second.converged, third.converged] == [0.0, 0.5, 0.5]
    assert first.mean_probability == pytest.approx((0.6 + 0.8) / 6)
    assert first.lowest_probability == pytest.approx((0.1 + 0.2) / 2)
    # pass 3: sentence 0 keeps its pass-2 state (lowest 0.3), sentence 1 has lowest 0.6
    assert third.mean_probability == pytest.approx((1.0 + 3.3) / 6)
    assert third.lowest_probability == pytest.approx((0.3 + 0.6) / 2)
    assert first.stutters == pytest.approx(1 / 6)  # "x x"
    assert first.repeated[2] == pytest.approx(1 / 4)  # "a b a b": "a b" again; "x x": one 2-gram, not repeated
    assert third.repeated[2] == 0.0


def test_pass_statistics_without_probabilities_leave_confidence_empty():
    trajectories = [t._replace(probabilities=None) for t in two_sentences()]
    assert all(p.mean_probability is None and p.lowest_probability is None for p in pass_statistics(trajectories))


def test_length_statistics_compare_predicted_reference_and_output():
    lengths = length_statistics(two_sentences())
    assert (lengths.sentences, lengths.predicted, lengths.output, lengths.reference) == (2, 4.0, 3.5, 4.5)
    assert (lengths.error, lengths.absolute_error) == (-0.5, 0.5)
    assert (lengths.exact, lengths.too_short, lengths.too_long) == (0.5, 0.5, 0.0)
    unreferenced = length_statistics([t._replace(reference_length=None) for t in two_sentences()])
    assert unreferenced.reference is None and unreferenced.exact is None and unreferenced.predicted == 4.0


def test_total_changes_sum_over_passes():
    assert [total_changes(t) for t in two_sentences()] == [0, 2]


def test_report_holds_one_row_per_pass_and_the_length_summary():
    trajectories = two_sentences()
    report = format_report(pass_statistics(trajectories), length_statistics(trajectories))
    rows = [line.split() for line in report.splitlines() if line.strip()[:1].isdigit()]
    assert [row[0] for row in rows] == ["1", "2", "3"]
    assert rows[1][:5] == ["2", "2", "6", "16.7%", "50.0%"]
    assert "predicted length exact 50.0%, too short 50.0%, too long 0.0%" in report


# ---- reading ------------------------------------------------------------------------------------------


def test_generate_output_with_history_lines_is_read_per_sentence_in_pass_order():
    lines = [
        "S-1\tquelle", "T-1\tref", "H-1\t-0.5\ta b", "D-1\t-0.5\ta b", "P-1\t-0.1 -0.2 -0.3",
        "E-1_1\ta b", "E-1_0\ta a", "H-0\t-0.1\tc", "P-0\t-0.1 -0.2", "E-0_0\tc",
        "Generate test with beam=1: BLEU4 = 1.0",
    ]
    zero, one = read_trajectories(lines)
    assert zero == Trajectory(id=0, passes=[["c"]], probabilities=None, predicted_length=2, output_length=2)
    assert one.passes == [["a", "a"], ["a", "b"]] and one.output_length == 3 and one.predicted_length == 3


def test_generate_output_without_history_lines_is_refused_with_the_flag_to_add():
    with pytest.raises(ValueError, match="--retain-iter-history"):
        read_trajectories(["H-0\t-0.1\tc", "P-0\t-0.1 -0.2"])


def test_trace_records_are_read_with_probabilities():
    record = {"id": 3, "predicted_length": 3, "output_length": 3, "reference_length": 4, "steps": 1,
              "passes": [{"tokens": ["a", "b"], "log_probs": [0.0, math.log(0.25)]}], "output": ["a", "b"]}
    (trajectory,) = read_trajectories([json.dumps(record), ""])
    assert trajectory.passes == [["a", "b"]] and trajectory.probabilities[0] == pytest.approx([1.0, 0.25])
    assert (trajectory.id, trajectory.predicted_length, trajectory.reference_length) == (3, 3, 4)


# ---- the generator's trace ----------------------------------------------------------------------------

SOURCES = [("w1 w2 w3", "w3 w2 w1"), ("w4 w5 w6 w7 w8 w9", "w9 w8 w7 w6 w5 w4"), ("w10 w11", "w11 w10")]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    task, model, cfg = build_task_and_model(tmp_path_factory.mktemp("trace"))
    model.eval()
    return task, model, cfg


def tracing_generator(task, model, path, **flags):
    args = Namespace(iter_decode_max_iter=3, max_len_a=1.0, max_len_b=5, **flags)
    task.cfg.refinement_diagnostics = str(path)
    try:
        return task.build_generator([model], args)
    finally:
        task.cfg.refinement_diagnostics = None


def traced(task, model, path, **flags):
    generator = tracing_generator(task, model, path, **flags)
    torch.manual_seed(0)
    return task.inference_step(generator, [model], make_sample(task, SOURCES))


def test_trace_holds_every_pass_of_the_returned_candidate_with_its_lengths(tiny, tmp_path):
    task, model, _ = tiny
    hypotheses = traced(task, model, tmp_path / "trace.jsonl", stutter_remask="on", decoder_init="random")
    records = [json.loads(line) for line in (tmp_path / "trace.jsonl").read_text().splitlines()]
    assert [r["id"] for r in records] == [0, 1, 2]
    dictionary = task.target_dictionary
    for record, (hypothesis,) in zip(records, hypotheses):
        assert len(record["passes"]) == record["steps"] == hypothesis["steps"]
        assert record["predicted_length"] == hypothesis["predicted_length"] == len(record["passes"][-1]["tokens"]) + 1
        assert record["output_length"] == len(hypothesis["tokens"])
        assert record["output"] == [dictionary[i] for i in hypothesis["tokens"][:-1].tolist()]
        assert all(len(p["tokens"]) == len(p["log_probs"]) for p in record["passes"])
        assert all(x <= 0 for p in record["passes"] for x in p["log_probs"])
        assert hypothesis["history"] is None  # kept only with --retain-iter-history
    assert [r["reference_length"] for r in records] == [4, 7, 3]


def test_trace_log_probs_of_the_last_pass_are_the_output_scores_without_stutter_removal(tiny, tmp_path):
    task, model, _ = tiny
    hypotheses = traced(task, model, tmp_path / "trace.jsonl", stutter_remask="off", retain_iter_history=True)
    records = [json.loads(line) for line in (tmp_path / "trace.jsonl").read_text().splitlines()]
    for record, (hypothesis,) in zip(records, hypotheses):
        assert record["passes"][-1]["log_probs"] == pytest.approx(hypothesis["positional_scores"][:-1].tolist(),
                                                                  abs=1e-4)
        assert len(hypothesis["history"]) == hypothesis["steps"]  # asked for: kept
        assert torch.equal(hypothesis["history"][-1]["positional_scores"], hypothesis["positional_scores"])


def test_trace_numbers_sentences_in_decoding_order_when_the_sample_has_no_ids(tiny, tmp_path):
    task, model, _ = tiny
    generator = tracing_generator(task, model, tmp_path / "trace.jsonl")
    for _ in range(2):  # fairseq-interactive: no "id" and no "target" in the sample
        sample = make_sample(task, SOURCES)
        del sample["id"], sample["target"]
        task.inference_step(generator, [model], sample)
    records = [json.loads(line) for line in (tmp_path / "trace.jsonl").read_text().splitlines()]
    assert [r["id"] for r in records] == list(range(6))
    assert all("reference_length" not in r for r in records)


# ---- end to end: fairseq-generate, then gmlm-diagnose ------------------------------------------------------


@pytest.fixture(scope="module")
def generated(reversal_corpus, tmp_path_factory):
    """fairseq-generate with --refinement-diagnostics and --retain-iter-history, by an untrained tiny model."""
    from omegaconf import OmegaConf

    work = tmp_path_factory.mktemp("diagnose")
    data = reversal_corpus / "bin"
    task, model, cfg = build_task_and_model(data, words=None)
    checkpoint = work / "checkpoint.pt"
    torch.save({
        "args": None, "cfg": OmegaConf.to_container(cfg, resolve=True, enum_to_str=True),
        "model": model.state_dict(), "criterion": None, "last_optimizer_state": None,
        "optimizer_history": [{"criterion_name": "GMLMLoss", "optimizer_name": "none",
                               "lr_scheduler_state": {"best": None}, "num_updates": 0}],
        "extra_state": {"train_iterator": {"epoch": 1, "iterations_in_epoch": 0, "version": 2},
                        "previous_training_time": 0},
    }, checkpoint)
    result = run_cli(
        "fairseq-generate", data, "--user-dir", PLUGIN, "--task", "translation_gmlm", "--path", checkpoint,
        "--gen-subset", "test", "--iter-decode-max-iter", "3", "--retain-iter-history", "--batch-size", "32",
        "--refinement-diagnostics", work / "trace.jsonl", "--cpu", "--max-len-a", "1", "--max-len-b", "3",
    )
    (work / "generate.txt").write_text(result.stdout)
    return work


def test_diagnose_writes_report_table_and_plots_from_a_trace(generated, capsys):
    out = generated / "from-trace"
    diagnose.main([str(generated / "trace.jsonl"), "--out", str(out), "--sentence", "5"])
    report = (out / "report.txt").read_text()
    assert "Refinement diagnostics: 100 sentences, up to " in report
    assert "predicted length exact" in report and "mean p" in report
    assert report in capsys.readouterr().out
    rows = (out / "sentences.tsv").read_text().splitlines()
    assert len(rows) == 101 and all(row.split("\t")[3] for row in rows[1:])  # every reference length known
    for name in ("passes.png", "lengths.png", "trajectory.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"


def test_diagnose_on_the_generate_output_sees_the_same_passes_as_the_trace(generated):
    from_trace = read_trajectories((generated / "trace.jsonl").read_text().splitlines())
    from_output = read_trajectories((generated / "generate.txt").read_text().splitlines())
    assert [t.id for t in from_trace] == [t.id for t in from_output] == list(range(100))
    for a, b in zip(from_trace, from_output):
        assert a.passes == b.passes
        assert (a.predicted_length, a.output_length) == (b.predicted_length, b.output_length)
    out = generated / "from-output"
    diagnose.main([str(generated / "generate.txt"), "--out", str(out), "--no-plots"])
    assert "reference lengths: not in this input" in (out / "report.txt").read_text()
    assert not (out / "passes.png").exists()
