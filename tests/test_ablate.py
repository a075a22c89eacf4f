"""The ablation harness (python -m benchmarks.harness.ablate, by its scripts/ablate.py path) --tiny end to end on two tiny synthetic corpora: every stage's files and every row.

No assertion on the figures: a toy run's BLEU means nothing; this checks the harness's plumbing (the budget rule
for the AR twin, the warm start of the warm variants, per-corpus valid sets, resuming)."""

import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT, write_reversal_corpus

pytestmark = pytest.mark.slow  # every test here runs fairseq command lines or trains

pytest.importorskip("matplotlib")

WARM = "mask_high_lr2e-3_raw_dropout0"  # warm-started, learned positions, --dropout 0: a twin of its own
VARIANTS = [WARM, "scratch"]


def run_ablate(work, corpora, variants=VARIANTS, *extra):
    command = [sys.executable, str(ROOT / "scripts" / "ablate.py"), "--work", str(work), "--tiny",
               "--corpora", *map(str, corpora), "--src", "src", "--tgt", "tgt", "--variants", *variants,
               "--max-update", "6", "--parallel", "1", *extra]
    environment = dict(os.environ, PATH=f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}")
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=environment)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return result.stdout + result.stderr


@pytest.fixture(scope="module")
def ablation(tmp_path_factory):
    base = tmp_path_factory.mktemp("ablate")
    corpora = []
    for name, seed in {"rev-a": 0, "rev-b": 1}.items():
        write_reversal_corpus(base / name, {"train": 120, "valid": 8, "test": 8}, seed=seed)
        corpora.append(base / name)
    work = base / "work"
    return work, corpora, run_ablate(work, corpora)


def test_every_stage_writes_its_files_and_reports_every_row(ablation):
    work, _, output = ablation
    for stage in range(1, 7):
        assert f"[{stage}/6]" in output
    expected = ["data/bin/valid1.src-tgt.tgt.idx", "data/bin/valid2.src-tgt.tgt.idx", "distill/bin/train.src-tgt.tgt.idx",
                "models/teacher/final.pt", "models/ar_twin/final.pt", "models/ar_twin_dropout0/final.pt", "eval/scores.json",
                "ablations/RESULTS.md", "ablations/results.json", "ablations/passes.png"]
    expected += [f"models/{name}/final.pt" for name in VARIANTS]
    assert [path for path in expected if not (work / path).is_file()] == []
    record = json.loads((work / "ablations" / "results.json").read_text())
    rows = {(row["corpus"], row["config"]) for row in record["rows"]}
    for corpus in ("rev-a", "rev-b"):
        for name in VARIANTS:
            assert {(corpus, f"{name}_p{p}") for p in (1, 2, 3, 5, 10)} <= rows
        assert {(corpus, "ar_twin_beam4"), (corpus, "ar_twin_dropout0_beam4"), (corpus, "teacher_beam4")} <= rows
    assert all(row["sentences"] == 8 for row in record["rows"])  # each corpus's own valid set
    # the variants decode as the benchmark's GMLM does, and the report says how
    stored = json.loads((work / "eval" / "rows" / f"rev-a.{next(iter(VARIANTS))}_p5.inputs.json").read_text())
    assert list(stored.values())[0][-2:] == ["--length-choice", "mean"]
    assert "the variants decode with `--length-choice mean`" in (work / "ablations" / "RESULTS.md").read_text()


def test_the_ar_twin_continues_the_teacher_and_warm_variants_start_from_it(ablation):
    work, _, _ = ablation
    record = json.loads((work / "ablations" / "results.json").read_text())
    assert record["updates"]["teacher"] == 6
    assert record["updates"]["ar_twin"] == 12  # the teacher's 6, then 6 more
    assert "(4 min or 12 updates in total)" in (work / "ablations" / "RESULTS.md").read_text()
    base_log = (work / "models" / WARM / "train.log").read_text()
    scratch_log = (work / "models" / "scratch" / "train.log").read_text()
    assert "--init-from-ar" in base_log and "models/teacher/final.pt" in base_log
    assert "--init-from-ar" not in scratch_log
    assert "--position-input learned" in (work / "models" / WARM / "command.txt").read_text()  # the variant's flags
    # each recorded command names the threads it trained with (--threads, default 1), and the report reads them; a
    # twin's is preceded by the copy of the teacher's last state it resumes
    commands = {name: (work / "models" / name / "command.txt").read_text().splitlines()
                for name in ["teacher", "ar_twin", "ar_twin_dropout0", *VARIANTS]}
    assert all(lines[-1].startswith("OMP_NUM_THREADS=1 fairseq-train ") for lines in commands.values())
    for twin in ("ar_twin", "ar_twin_dropout0"):
        assert commands[twin][0] == f"cp {work}/models/teacher/checkpoint_last.pt {work}/models/{twin}/checkpoint_last.pt"
    assert all(len(commands[name]) == 1 for name in ["teacher", *VARIANTS])
    # the teacher and its twins start their relative-position tables head-diverse (the recipe's teacher); a GMLM
    # variant's tables come from the teacher or, from scratch, the random draw
    for name in ("teacher", "ar_twin", "ar_twin_dropout0"):
        assert "--relative-attention-init diverse" in commands[name][-1]
    assert not any("--relative-attention-init" in commands[name][-1] for name in VARIANTS)
    assert record["trained_threads"] == {name: 1 for name in record["updates"]}


def test_twin_flags_are_a_variants_regularisation_flags_and_name_its_twin():
    from benchmarks.harness.ablate import twin_flags, twin_name

    flags = ["--position-input", "learned", "--dropout", "0", "--lr", "2e-3", "--label-smoothing", "0.05"]
    assert twin_flags(flags) == ["--dropout", "0", "--label-smoothing", "0.05"]
    assert twin_name(flags) == "ar_twin_dropout0_label_smoothing0.05"
    assert twin_flags(["--position-input", "learned", "--mask-ratio", "0.5:1"]) == []
    assert twin_name(["--position-input", "learned"]) == "ar_twin"
    assert twin_flags(["--dropout"]) == []  # a flag without its value is not a pair


def test_twin_flags_carry_the_learning_rate_schedule():
    from benchmarks.harness.ablate import VARIANTS as ALL, twin_flags, twin_name

    flags = ALL["mask_high_lr2e-3_raw_dropout0_budget_linear"]["flags"]
    assert twin_flags(flags) == ["--dropout", "0", "--lr-scheduler", "budget_linear"]
    assert twin_name(flags) == "ar_twin_dropout0_lr_schedulerbudget_linear"


def test_one_kept_state_is_saved_where_training_stops_and_more_are_saved_every_100_updates(tmp_path):
    """As in the benchmark, a single kept state costs no interval saves (each validates the valid sets); states
    to average are saved every 100 updates (tiny: 10) and at epoch ends."""
    from benchmarks.harness.ablate import base_flags, parse_args
    from benchmarks.harness.training import pairs

    def saving(*extra):
        flags = dict(pairs(base_flags(parse_args(["--work", str(tmp_path), *extra]), "t5_ar", 10.0)))
        return flags["--save-interval-updates"], flags["--save-interval"], flags["--keep-interval-updates"]

    assert saving() == ("0", "100000", "1")
    assert saving("--keep-states", "3") == ("100", "1", "3")
    assert saving("--tiny", "--keep-states", "2") == ("10", "1", "2")


def test_raw_only_variants_skip_distillation_and_a_scheduled_twin_restarts_its_schedule(tmp_path):
    """A budget_linear variant's twin resumes the teacher's inverse_sqrt state: its schedule starts afresh at the
    teacher's updates and decays over the variant's --minutes, not its total budget."""
    import torch

    corpus = tmp_path / "rev"
    write_reversal_corpus(corpus, {"train": 120, "valid": 8, "test": 8}, seed=0)
    work = tmp_path / "work"
    output = run_ablate(work, [corpus], ["mask_high_lr2e-3_raw_dropout0_budget_linear"], "--stop-after", "4",
                        "--keep-states", "2")
    assert "distillation skipped" in output and not (work / "distill").exists()
    twin = work / "models" / "ar_twin_dropout0_lr_schedulerbudget_linear"
    words = (twin / "command.txt").read_text().split()
    assert words[words.index("--keep-interval-updates") + 1] == words[words.index("--keep-last-epochs") + 1] == "2"
    assert words[words.index("--lr-scheduler") + 1] == "budget_linear"
    assert words[words.index("--decay-minutes") + 1] == "2.0"  # --minutes of a tiny run; --stop-time-hours is 4 min
    history = torch.load(twin / "final.pt", map_location="cpu", weights_only=False)["optimizer_history"][-1]
    assert history["num_updates"] == 12 and history["lr_scheduler_state"]["budget_linear_first_update"] == 6


def test_a_variant_without_dropout_is_compared_with_a_twin_trained_on_without_dropout(ablation):
    work, _, _ = ablation
    record = json.loads((work / "ablations" / "results.json").read_text())
    assert record["twins"] == {"ar_twin_dropout0": ["--dropout", "0"], "ar_twin": []}
    assert record["variants"][WARM]["twin"] == "ar_twin_dropout0" and record["variants"]["scratch"]["twin"] == "ar_twin"
    def dropouts(twin):  # the values of --dropout in TWIN's command, in order
        words = (work / "models" / twin / "command.txt").read_text().split()
        return [words[i + 1] for i, word in enumerate(words) if word == "--dropout"]

    assert dropouts("ar_twin") == ["0.1"] and dropouts("ar_twin_dropout0") == ["0"]  # set once, not overridden
    assert record["updates"]["ar_twin_dropout0"] == 12  # the teacher's 6, then 6 more
    # the report's "% of AR twin" of each variant is against its own twin
    rows = {(row["corpus"], row["config"]): row["bleu"] for row in record["rows"]}
    table = (work / "ablations" / "RESULTS.md").read_text()
    for name, twin in ((WARM, "ar_twin_dropout0"), ("scratch", "ar_twin")):
        line = next(line for line in table.splitlines() if line.startswith(f"| {name} |"))
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        for corpus_index, corpus in enumerate(("rev-a", "rev-b")):
            twin_bleu = rows[(corpus, f"{twin}_beam4")]
            expected = f"{100 * rows[(corpus, f'{name}_p5')] / twin_bleu:.0f}%" if twin_bleu else "–"
            assert cells[5 + 5 * corpus_index + 2] == expected


def test_rerunning_resumes_from_the_outputs(ablation):
    work, corpora, _ = ablation
    output = run_ablate(work, corpora)
    assert "skip: " in output and "scores.json exists" in output
    assert "done training" not in output


def test_reranking_comparison_scores_and_times_every_configuration(ablation):
    """benchmarks/harness/reranking.py on the ablation's models: the GMLM alone and reranked by its teacher."""
    from benchmarks.harness.reranking import configs

    work, _, _ = ablation
    out = work / "reranking.md"
    command = [sys.executable, "-m", "benchmarks.harness.reranking", "--work", str(work), "--src", "src",
               "--tgt", "tgt", "--latency-sentences", "2", "--repeats", "1", "--threads", "1", "--out", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-5000:]
    record = json.loads(out.with_suffix(".json").read_text())
    keys = [config.key for config in configs()]
    assert sorted((row["corpus"], row["config"]) for row in record["scores"]) == sorted(
        (corpus, key) for corpus in ("rev-a", "rev-b") for key in keys)
    assert all(row["sentences"] == 8 for row in record["scores"])
    assert sorted(record["latency_ms"]) == sorted(keys) and min(record["latency_ms"].values()) > 0
    table = out.read_text()
    assert all(config.system in table for config in configs())
