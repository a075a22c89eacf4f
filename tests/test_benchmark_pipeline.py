"""The benchmark harness (python -m benchmarks.harness.run, by its scripts/run_benchmark.py path) --tiny end to end on two tiny synthetic corpora: every stage's files, every row.

No timing asserts: the figures of a toy run mean nothing; this checks the pipeline's plumbing.
"""

import importlib.util
import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from conftest import ROOT, build_from_flags, write_reversal_corpus
from fairseq_gmlm.precision import cpu_has_native_bfloat16

pytest.importorskip("matplotlib")
from benchmarks.harness.profile import profiled_keys  # noqa: E402
from benchmarks.harness.systems import benchmark_configs  # noqa: E402
from benchmarks.harness.run import BATCH_SCALE, PEAK_LR, RECIPES, TIE_OUTPUT_PROJECTION  # noqa: E402
from benchmarks.harness.speed import pieces, schedule  # noqa: E402
from benchmarks.harness.training import MAX_TOKENS  # noqa: E402

CORPORA = {"rev-a": 0, "rev-b": 1}  # corpus name -> seed
MODELS = ("teacher", "ar", "gmlm", "gmlm_scratch", "cmlm")
TEST_SIZE = 12


def run_pipeline(work, corpora, *extra, returncode=0):
    command = [sys.executable, str(ROOT / "scripts" / "run_benchmark.py"), "--work", str(work), "--tiny", "--cpu",
               "--corpora", *map(str, corpora), "--src", "src", "--tgt", "tgt", "--max-update", "8", "--save-every", "4",
               "--ar-minutes", "5", "--minutes", "5",
               "--latency-sentences", "3", "--large-batch", "8", "--repeats", "2", "--threads", "1", *extra]
    environment = dict(os.environ, OMP_NUM_THREADS="1", PATH=f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}")
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=environment)
    assert result.returncode == returncode, result.stdout[-3000:] + result.stderr[-5000:]
    return result.stdout + result.stderr


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    base = tmp_path_factory.mktemp("benchmark")
    corpora = []
    for name, seed in CORPORA.items():
        write_reversal_corpus(base / name, {"train": 150, "valid": 10, "test": TEST_SIZE}, seed=seed)
        corpora.append(base / name)
    work = base / "work"
    return work, corpora, run_pipeline(work, corpora)


@pytest.mark.slow
def test_every_stage_writes_its_files(pipeline):
    work, _, output = pipeline
    expected = ["data/corpora.json", "data/spm.model", "data/bin/test.src-tgt.tgt.idx", "data/bin/test1.src-tgt.tgt.idx",
                "distill/bin/train.src-tgt.tgt.idx", "distill/bin/test1.src-tgt.tgt.idx", "eval/scores.json",
                "speed-cpu-fp32/speed.json", "speed-cpu-fp32/profile.json", "speed-cpu-fp32/profile-batch8.json",
                "benchmarks/RESULTS.md", "benchmarks/results.json", "benchmarks/tradeoff.png"]
    expected += [f"models/{name}/final.pt" for name in MODELS]
    assert [path for path in expected if not (work / path).is_file()] == []
    for stage in range(1, 8):
        assert re.search(rf"\[{stage}/7\] .*min elapsed, about \d+ min left\)", output)
    averaged = dict(re.findall(r"(\w+)/final\.pt = average of (.*)", output))
    assert sorted(averaged) == sorted(MODELS)
    # --average-last 2 (tiny): the state at the stop and the save before it; the teacher, which the AR baseline passes
    # through, is its last state alone
    assert averaged.pop("teacher") == "checkpoint_last.pt"
    assert all(re.fullmatch(r"checkpoint(_\d+_\d+|\d+)\.pt, checkpoint_last\.pt", states) for states in averaged.values())


@pytest.mark.parametrize("kind", ["t5_ar", "gmlm", "ar", "cmlm"])
def test_every_system_is_built_with_the_layer_counts_given_in_place_of_the_presets(tmp_path, kind):
    from benchmarks.harness.training import system_flags

    flags = system_flags(kind, "gmlm_t5_tiny", {"encoder_layers": 3, "decoder_layers": 1})  # the preset has 2 + 2
    _, model, _ = build_from_flags(tmp_path, flags)
    # gmlm_t5: encoder.blocks.N.*, t5_ar: encoder.stack.blocks.N.*, fairseq's transformer and cmlm: encoder.layers.N.*
    block = re.compile(r"(encoder|decoder)\.(?:stack\.)?(?:blocks|layers)\.(\d+)\.")
    blocks = {match.groups() for match in map(block.match, model.state_dict()) if match}
    assert Counter(side for side, _ in blocks) == {"encoder": 3, "decoder": 1}


def test_layer_counts_default_to_4_plus_2_on_cpu_and_below_one_are_refused():
    from benchmarks.harness.run import layers, parse_args

    with pytest.raises(SystemExit, match="--decoder-layers must be >= 1, got 0"):
        parse_args(["--work", "w", "--decoder-layers", "0"])
    # the CPU run's default shape is 4 + 2 (measured); a count given replaces it; the tiny and GPU presets keep their
    # arch's counts, which are left out, not passed on as None
    assert layers(parse_args(["--work", "w"])) == {"encoder_layers": 4, "decoder_layers": 2}
    assert layers(parse_args(["--work", "w", "--encoder-layers", "3"])) == {"encoder_layers": 3, "decoder_layers": 2}
    assert layers(parse_args(["--work", "w", "--tiny"])) == {}
    assert layers(parse_args(["--work", "w", "--gpu"])) == {}


@pytest.mark.slow
def test_teacher_final_is_its_last_state(pipeline):
    import torch

    work, _, _ = pipeline
    final = torch.load(work / "models/teacher/final.pt", map_location="cpu", weights_only=False)["model"]
    last = torch.load(work / "models/teacher/checkpoint_last.pt", map_location="cpu", weights_only=False)["model"]
    assert final.keys() == last.keys()
    assert all(torch.equal(final[key], last[key]) for key in final)


@pytest.mark.slow
def test_distilled_corpus_pairs_every_training_sentence(pipeline):
    work, _, _ = pipeline
    sources = (work / "distill" / "text" / "train.src").read_text().splitlines()
    targets = (work / "distill" / "text" / "train.tgt").read_text().splitlines()
    assert len(sources) == len(targets) == 2 * 150


@pytest.mark.slow
def test_distilled_targets_are_the_teacher_translations_not_the_original_targets(pipeline):
    from fairseq_gmlm.cli.distill import parse_args, read_hypotheses, read_split

    work, _, _ = pipeline
    distilled = (work / "distill" / "text" / "train.tgt").read_text().splitlines()
    data = str(work / "data" / "bin")
    assert read_split(data, "train", "src", "tgt", "src") == (work / "distill" / "text" / "train.src").read_text().splitlines()
    original = read_split(data, "train", "src", "tgt", "tgt")
    assert sum(d != o for d, o in zip(distilled, original)) > len(original) // 2
    teacher = read_hypotheses(work / "distill" / "generate.train.txt")  # fairseq-generate --beam 4 of the teacher
    assert len(teacher) == len(distilled) and all(distilled[i] == hypothesis for i, hypothesis in teacher.items())
    # the teacher named in the recorded command, asked again through fairseq-interactive, says the same
    command = (work / "distill.command.txt").read_text().split()
    recorded = parse_args(command[command.index("fairseq_gmlm.cli.distill") + 1:])
    assert "models/teacher" in recorded.path
    # fairseq caps a batch's output length by its longest source (a x + b), so a sentence that ran into the cap in
    # its distillation batch may be cut shorter alone: compare sentences that ended before their own cap
    sources = (work / "distill" / "text" / "train.src").read_text().splitlines()
    ended = [i for i, (source, target) in enumerate(zip(sources, distilled))
             if len(target.split()) + 1 < int(recorded.max_len_a * (len(source.split()) + 1) + recorded.max_len_b)][:40]
    assert len(ended) >= 20
    sources = [sources[i] for i in ended]
    result = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "fairseq-interactive"), data, "--path", recorded.path, "--user-dir",
         str(ROOT / "fairseq_gmlm"), "--task", "translation", "-s", "src", "-t", "tgt", "--beam", str(recorded.beam),
         "--cpu", "--max-len-a", str(recorded.max_len_a), "--max-len-b", str(recorded.max_len_b)],
        input="\n".join(sources) + "\n", capture_output=True, text=True, timeout=300, cwd=work,
        env=dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT)))
    assert result.returncode == 0, result.stderr[-3000:]
    answers = [line.split("\t")[2] if line.count("\t") >= 2 else "" for line in result.stdout.splitlines()
               if line.startswith("H-")]
    assert len(answers) == len(ended)
    # The tiny teacher (8 updates) is nearly uniform, so a beam can flip on a float near-tie between a padded batch and
    # a lone sentence: 90 of 95 agreed in one run (2026-12-02). Another model's translations would agree on almost none.
    agreed = sum(answer == distilled[i] for answer, i in zip(answers, ended))
    assert agreed >= 0.8 * len(ended), f"{agreed} of {len(ended)} lone translations equal the distilled targets"


@pytest.mark.slow
def test_results_table_has_every_row(pipeline):
    work, _, _ = pipeline
    result = json.loads((work / "benchmarks" / "results.json").read_text())
    configs = benchmark_configs()
    assert list(result["tables"]) == list(CORPORA)
    for rows in result["tables"].values():
        assert [row["config"] for row in rows] == [config.key for config in configs]
        timed = {config.key for config in configs if config.timed}
        assert "teacher_beam4" not in timed and "gmlm_p5" in timed
        for row in rows:
            assert row["sentences"] == TEST_SIZE
            assert {"bleu", "chrf", "length_ratio", "repeated_words"} <= set(row)
            assert 0 <= row["repeated_words"] <= 1  # error-mode share
            speed = {"latency_ms", "throughput", "latency_speedup", "throughput_speedup"}
            assert speed <= set(row) if row["config"] in timed else not speed & set(row)
            assert row.get("repeats") == (2 if row["config"] in timed else None)  # timing rounds
    markdown = (work / "benchmarks" / "RESULTS.md").read_text()
    for corpus in CORPORA:
        assert f"## Test set {corpus} ({TEST_SIZE} sentences)" in markdown
    test_tables = markdown.split("## Where the time goes")[0]
    passes_cells = [line.split("|")[2].strip() for line in test_tables.splitlines() if line.startswith("| ")]
    table_rows = [cell for cell in passes_cells if cell == "AR" or re.fullmatch(r"\d+ / [\d.]+", cell)]
    assert len(table_rows) == len(CORPORA) * len(configs)
    assert result["machine"]["threads"] == 1 and result["commands"]
    assert result["machine"]["native_bfloat16"] is cpu_has_native_bfloat16()  # which decides --train-amp's default
    assert f"cores, bfloat16 {'native' if cpu_has_native_bfloat16() else 'emulated'})" in markdown
    # the AR baseline's command follows the copy of the teacher's last state it starts from
    copy = result["commands"].index(f"cp {work}/models/teacher/checkpoint_last.pt {work}/models/ar/checkpoint_last.pt")
    assert result["commands"][copy + 1].endswith(f"--save-dir {work}/models/ar")
    # the schedule the report names is the one the AR baseline trained with
    schedule = " ".join(result["training"]["schedule"])
    assert schedule in result["commands"][copy + 1] and f"use `{schedule}`" in markdown
    assert [row["config"] for row in result["valid"]] == ["ar_greedy", "ar_beam4", "gmlm_p5"]
    assert "## The valid set" in markdown and "## Training" in markdown
    profiled = {(row["corpus"], row["config"], row["batch_size"]) for row in result["profile"]}
    assert profiled == {(corpus, key, batch) for corpus in CORPORA for batch in (1, 8) for key in profiled_keys(batch)}
    for row in result["profile"]:  # every system calls its decoder at least once per batch
        assert row["decoder_calls_per_batch"] >= 1 and 0 < row["network_ms"] < row["total_ms"]
        assert row["sentences"] == (3 if row["batch_size"] == 1 else TEST_SIZE)
    single = {row["config"]: row for row in result["profile"] if row["batch_size"] == 1}
    assert single["gmlm_p5"]["encoder_calls"] == 1 and single["gmlm_reranked_p5"]["encoder_calls"] == 2  # + teacher
    large = {(row["corpus"], row["config"]): row for row in result["profile"] if row["batch_size"] == 8}
    for corpus in CORPORA:  # per call: a cached AR step, one position per row (at most 8); a pass, the whole target
        greedy, refined = large[(corpus, "ar_greedy")], large[(corpus, "gmlm_p2")]
        assert greedy["decoder_positions"] <= greedy["decoder_calls"] * 8
        assert refined["decoder_positions"] > refined["decoder_calls"] * 8
    assert "## Where the time goes (batch size 1" in markdown and "## Where the time goes (batch size 8" in markdown


@pytest.mark.slow
def test_the_targets_section_gives_each_test_sets_bleu_share_with_its_interval_or_says_why_not(pipeline):
    work, _, _ = pipeline
    result = json.loads((work / "benchmarks" / "results.json").read_text())
    markdown = (work / "benchmarks" / "RESULTS.md").read_text()
    targets = markdown.split("## Targets")[1].split("## Test set")[0]
    assert list(result["shares"]) == list(CORPORA)
    for corpus, share in result["shares"].items():
        rows = {row["config"]: row for row in result["tables"][corpus]}
        assert share["baseline_bleu"] == pytest.approx(rows["ar_beam4"]["bleu"])
        line = next(line for line in targets.splitlines() if line.startswith(f"| {corpus} |"))
        assert f"{rows['gmlm_p5']['latency_speedup']:.2f}x" in line
        if share["share"] is None:  # a toy AR can score 0
            assert "(AR BLEU 0)" in line
        else:
            assert share["share"] == pytest.approx(rows["gmlm_p5"]["bleu"] / rows["ar_beam4"]["bleu"])
            assert share["low"] <= share["share"] <= share["high"]
            assert f"{100 * share['share']:.0f}% ({100 * share['low']:.0f}–{100 * share['high']:.0f}%)" in line


def test_repeated_word_share_counts_lines_with_a_directly_repeated_word():
    from fairseq_gmlm.cli.split_decoding import repeated_word_share

    assert repeated_word_share(["the the cat", "a cat , , sat", "Yes yes", "no repeat here", ""]) == 2 / 5


@pytest.mark.slow
def test_the_budget_rule_gives_no_system_fewer_updates_than_the_warm_started_gmlm_in_all(pipeline):
    work, _, _ = pipeline
    models = json.loads((work / "benchmarks" / "results.json").read_text())["models"]
    warm_start = models["teacher"]["updates"] + models["gmlm"]["updates"]  # tiny: every job stops at its --max-update
    assert models["teacher"]["updates"] == models["gmlm"]["updates"] == 8
    assert all(models[name]["updates"] >= warm_start for name in ("ar", "gmlm_scratch", "cmlm"))
    commands = {name: (work / "models" / name / "command.txt").read_text() for name in MODELS}
    teacher = commands["teacher"].split()
    assert teacher[teacher.index("--relative-attention-init") + 1] == "diverse"  # the recipe's teacher tables
    assert "--relative-attention-init" not in commands["gmlm_scratch"]
    assert "--init-from-ar" in commands["gmlm"] and "--init-from-ar" not in commands["gmlm_scratch"]
    assert commands["gmlm"].split()[commands["gmlm"].split().index("--init-from-ar") + 1].endswith("models/teacher/final.pt")
    # the AR baseline is the teacher trained on: its command.txt copies the teacher's last state in, then trains with
    # the same data, seed and flags, but a longer budget, its own batch (BATCH_SCALE) and a learning rate from its own
    # peak falling to the end of its own 5 minutes
    copy, train = commands["ar"].splitlines()
    assert copy == f"cp {work}/models/teacher/checkpoint_last.pt {work}/models/ar/checkpoint_last.pt"
    ar = train.split()
    assert ar[ar.index("--lr-scheduler") + 1] == "budget_linear" and ar[ar.index("--decay-minutes") + 1] == "5.0"
    assert teacher[teacher.index("--lr-scheduler") + 1] == "inverse_sqrt"
    batch = ("--max-tokens", "--warmup-updates")
    assert without(ar, "--stop-time-hours", "--max-update", "--save-dir", "--lr-scheduler", "--decay-minutes", "--lr",
                   *batch) == without(teacher, "--stop-time-hours", "--max-update", "--save-dir", "--lr-scheduler", "--lr",
                                      *batch)
    for name, scale in BATCH_SCALE.items():  # each model at its measured batch, the report naming it
        words = commands[name].split()
        assert int(words[words.index("--max-tokens") + 1]) == round(MAX_TOKENS * scale) != int(teacher[teacher.index("--max-tokens") + 1])
    assert re.search(r"Loaded checkpoint \S*models/ar/checkpoint_last\.pt \(epoch \d+ @ 8 updates\)",
                     (work / "models" / "ar" / "train.log").read_text())  # the teacher's last state, copied in
    for name, scheduler in (("gmlm", "budget_linear"), ("gmlm_scratch", "budget_linear"), ("cmlm", "inverse_sqrt")):
        words = commands[name].split()
        assert words[words.index("--lr-scheduler") + 1] == scheduler and "--decay-minutes" not in words
    # each budget_linear model trains at its own measured peak (PEAK_LR), which the report's training paragraph names
    for name, peak in PEAK_LR.items():
        words = commands[name].split()
        assert words[words.index("--lr") + 1] == peak[1] and words.count("--lr") == 1
    training = (work / "benchmarks" / "RESULTS.md").read_text().split("## Training")[1]
    tied = ["--tie-output-projection"] if TIE_OUTPUT_PROJECTION else []  # the run takes the default
    assert all(f"`{' '.join(recipe + tied)}`" in training for recipe in RECIPES.values())
    assert all(("--tie-output-projection" in commands[name]) == TIE_OUTPUT_PROJECTION for name in RECIPES)
    assert "--tie-output-projection" not in commands["cmlm"]
    assert "the AR baseline 2048" in training and "the teacher 4096" in training


def without(words: list, *flags) -> list:
    """A training command without FLAGS and their values."""
    return [word for i, word in enumerate(words) if word not in flags and (i == 0 or words[i - 1] not in flags)]


@pytest.mark.slow
def test_rerun_skips_every_finished_stage(pipeline):
    work, corpora, _ = pipeline
    before = json.loads((work / "benchmarks" / "results.json").read_text())
    measured = 1577934240  # 2020-01-02 03:04 UTC: the figures' files as if measured then
    for path in [*(work / "eval").rglob("*"), *(work / "speed-cpu-fp32").rglob("*")]:
        os.utime(path, (measured, measured))
    output = run_pipeline(work, corpora)
    assert "fairseq-train" not in output and "decoding train" not in output
    assert output.count("skip") >= 8  # prepare, 5 models, evaluation, speed (distill: its subprocess)
    # the report written again gives the date its figures were measured at, and the same figures
    after = json.loads((work / "benchmarks" / "results.json").read_text())
    assert after["date"] == "2020-01-02 03:04 UTC" and after["tables"] == before["tables"]


@pytest.mark.slow
def test_a_rerun_that_would_train_its_models_otherwise_is_refused_naming_the_flag(pipeline):
    work, corpora, _ = pipeline
    report = (work / "benchmarks" / "results.json").read_text()
    flip, now = ("--no-tie-output-projection", "unset") if TIE_OUTPUT_PROJECTION else ("--tie-output-projection", "set")
    output = run_pipeline(work, corpora, flip, returncode=1)
    assert re.search(rf"teacher: the model in \S+models/teacher was trained with other flags than this run gives it "
                     rf"\(--tie-output-projection: \w+ then, {now} now\)", output)
    assert "fairseq-train" not in output and (work / "benchmarks" / "results.json").read_text() == report


@pytest.mark.slow
def test_an_evaluation_cut_short_scores_only_the_rows_it_had_not_scored_when_run_again(pipeline):
    work, corpora, _ = pipeline
    scores = work / "eval" / "scores.json"
    before = json.loads(scores.read_text())
    corpus = next(iter(before["test"]))["corpus"]
    scores.unlink()  # as a run stopped during stage 5 leaves it: some rows scored, no scores.json
    (work / "eval" / "rows" / f"{corpus}.gmlm_p3.json").unlink()
    output = run_pipeline(work, corpora)
    scored_again = re.findall(r"benchmark\.evaluate\W+(\S+) +(\S+) +BLEU", output)
    assert scored_again == [(corpus, "gmlm_p3")]

    def untimed(record):  # the row scored again took its own seconds
        return {part: [{key: value for key, value in row.items() if key != "seconds"} for row in rows]
                for part, rows in record.items()}

    assert untimed(json.loads(scores.read_text())) == untimed(before)


@pytest.mark.slow
def test_a_row_decoded_with_other_flags_than_its_configuration_has_now_is_scored_again(pipeline):
    work, corpora, _ = pipeline
    scores = work / "eval" / "scores.json"
    corpus = json.loads(scores.read_text())["test"][0]["corpus"]
    for stamp in (work / "eval" / "scores.inputs.json", work / "eval" / "rows" / f"{corpus}.gmlm_p3.inputs.json"):
        inputs = json.loads(stamp.read_text())  # as if scored before the GMLM rows' decoding flags changed
        assert "--length-choice" in inputs["gmlm_p3"]
        inputs["gmlm_p3"] = ["--iter-decode-max-iter", "2"]
        stamp.write_text(json.dumps(inputs))
    output = run_pipeline(work, corpora)
    assert re.findall(r"benchmark\.evaluate\W+(\S+) +(\S+) +BLEU", output) == [(corpus, "gmlm_p3")]
    assert f"again: {scores}" in output and "timing round" not in output  # the speed stage's flags did not change


def test_speedups_are_relative_to_ar_beam4_at_the_same_batch_size_when_merged():
    from benchmarks.harness.report import merge

    scores = [{"corpus": "c", "config": key, "bleu": 1.0} for key in ("ar_beam4", "gmlm_p5")]
    speed = [{"corpus": "c", "config": "ar_beam4", "latency_ms": 30.0, "throughput": 100.0},
             {"corpus": "c", "config": "gmlm_p5", "latency_ms": 10.0, "throughput": 50.0}]
    rows = merge(scores, speed)["c"]
    assert rows[1]["latency_speedup"] == 3.0 and rows[1]["throughput_speedup"] == 0.5
    assert rows[0]["latency_speedup"] == rows[0]["throughput_speedup"] == 1.0


def test_the_figure_draws_only_timed_systems_in_table_order():
    from benchmarks.harness.report import timed_systems

    rows = [{"system": "AR", "passes": None, "latency_ms": 30.0}, {"system": "teacher", "passes": None},
            {"system": "GMLM", "passes": 1, "latency_ms": 5.0}, {"system": "GMLM", "passes": 5, "latency_ms": 12.0}]
    systems = timed_systems(rows)
    assert list(systems) == ["AR", "GMLM"]  # the scored-only teacher gets no legend entry
    assert [row["passes"] for row in systems["GMLM"]] == [1, 5]


def test_the_shared_legend_sits_below_every_panel_and_names_every_label_in_order():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from benchmarks.harness.report import legend_below

    figure, axes = plt.subplots(1, 2, figsize=(12, 4.5), squeeze=False)
    handles = {f"system {index}": axes[0][index % 2].plot([0, 1], [index, index])[0] for index in range(7)}
    legend_below(figure, handles)
    figure.canvas.draw()
    (legend,) = figure.legends
    assert [text.get_text() for text in legend.get_texts()] == list(handles)
    assert all(axis.get_legend() is None for axis in axes[0])
    top = legend.get_window_extent().transformed(figure.transFigure.inverted()).y1  # figure fraction
    assert all(axis.get_tightbbox().transformed(figure.transFigure.inverted()).y0 >= top - 1e-3 for axis in axes[0])
    plt.close(figure)


def test_distill_names_the_flag_when_data_has_no_dictionary(tmp_path):
    from fairseq_gmlm.cli import distill

    with pytest.raises(SystemExit, match="--data .*dict.de.txt"):
        distill.main(["--data", str(tmp_path), "--path", str(tmp_path / "x.pt"), "--out", str(tmp_path / "out")])


def test_distill_reads_empty_hypotheses_when_generate_prints_them(tmp_path):
    from fairseq_gmlm.cli import distill

    output = tmp_path / "generate.txt"
    output.write_text("S-1\ta b\nH-1\t-0.5\tx y\nH-0\t-1.2\t\nP-0\t-1.2\n")
    assert distill.read_hypotheses(output) == {1: "x y", 0: ""}


def test_corpus_check_names_the_flag_when_a_split_is_missing(tmp_path):
    from fairseq_gmlm.cli.prepare_data import check_corpus

    (tmp_path / "train.de").write_text("a\n")
    with pytest.raises(SystemExit, match="--corpora .*missing train.en"):
        check_corpus(str(tmp_path), "de", "en")


@pytest.mark.parametrize("last_update, expected", [
    (250, ["checkpoint_2_200.pt", "checkpoint_2_220.pt", "checkpoint_last.pt"]),
    (220, ["checkpoint1.pt", "checkpoint_2_200.pt", "checkpoint_last.pt"]),  # the stop coincided with a save
])
def test_last_states_are_the_newest_saves_by_update_count_ending_with_the_stop(tmp_path, last_update, expected):
    import torch
    from benchmarks.harness.training import last_states

    for name in ("checkpoint_1_100.pt", "checkpoint_2_200.pt", "checkpoint_2_220.pt", "checkpoint_best.pt",
                 "checkpoint_1_30.pt"):
        (tmp_path / name).write_bytes(b"")
    for name, updates in (("checkpoint1.pt", 150), ("checkpoint_last.pt", last_update)):
        torch.save({"optimizer_history": [{"num_updates": updates}]}, tmp_path / name)
    assert [path.name for path in last_states(tmp_path, 3)] == expected


def test_recorded_commands_name_tools_and_repository_paths_as_a_user_types_them():
    from benchmarks.harness.paths import ROOT as HARNESS_ROOT, shown

    assert HARNESS_ROOT == ROOT
    command = ["/some/venv/bin/fairseq-train", str(ROOT / "work" / "data" / "bin"), "--user-dir",
               str(ROOT / "fairseq_gmlm"), "--adam-betas", "(0.9, 0.98)", "/elsewhere/x.pt"]
    assert shown(command) == "fairseq-train work/data/bin --user-dir fairseq_gmlm --adam-betas '(0.9, 0.98)' /elsewhere/x.pt"


def test_a_flag_set_again_takes_the_new_value_in_its_place_and_appears_once():
    from benchmarks.harness.training import pairs, with_flags, words

    base = ["--lr", "1e-3", "--cpu", "--dropout", "0.1", "--adam-betas", "(0.9, 0.98)"]
    assert pairs(base) == [("--lr", "1e-3"), ("--cpu", None), ("--dropout", "0.1"), ("--adam-betas", "(0.9, 0.98)")]
    assert with_flags(base, ["--dropout", "0", "--init-from-ar", "t.pt", "--cpu"]) == [
        "--lr", "1e-3", "--cpu", "--dropout", "0", "--adam-betas", "(0.9, 0.98)", "--init-from-ar", "t.pt"]
    assert with_flags(base, []) == base
    assert words(pairs(base)) == base  # and back
    with pytest.raises(ValueError, match="'0.5' follows no flag"):
        pairs(["--lr", "1e-3", "0.5"])


def test_a_budget_linear_run_resumed_from_another_schedule_must_be_told_its_minutes_left(tmp_path):
    from benchmarks.harness.training import train

    start = tmp_path / "teacher.pt"
    start.write_bytes(b"")
    with pytest.raises(ValueError, match="ar: a budget_linear run resumed from .*teacher.pt needs minutes_left"):
        train("ar", "bin", tmp_path / "ar", ["--lr-scheduler", "budget_linear"], 1, resume=start)
    assert not (tmp_path / "ar").exists()  # refused before anything is made, copied or trained


def test_a_trained_or_interrupted_model_is_reused_only_where_it_was_trained_with_the_flags_given_now(tmp_path, monkeypatch):
    from benchmarks.harness import training

    def never_trained(*args):
        raise AssertionError(f"trained again: {args}")

    monkeypatch.setattr(training, "run_logged", never_trained)
    save_dir = tmp_path / "models" / "gmlm"
    save_dir.mkdir(parents=True)
    (save_dir / "final.pt").write_bytes(b"")
    # recorded by a run with its threads set and its work folder elsewhere: neither changes what was trained
    (save_dir / "command.txt").write_text(
        "OMP_NUM_THREADS=1 fairseq-train /old/data/bin --arch gmlm_t5_mini --adam-betas '(0.9, 0.98)' --lr 3e-3 --amp "
        "--init-from-ar /old/models/teacher/final.pt --save-dir /old/models/gmlm\n")
    flags = ["--arch", "gmlm_t5_mini", "--adam-betas", "(0.9, 0.98)", "--lr", "3e-3", "--amp",
             "--init-from-ar", str(tmp_path / "models" / "teacher" / "final.pt")]
    assert training.train("gmlm", "data/bin", save_dir, flags, 1) == save_dir / "final.pt"
    changed = training.with_flags(flags, ["--lr", "4e-3", "--tie-output-projection"])
    with pytest.raises(SystemExit, match=r"gmlm: the model in \S*gmlm was trained with other flags than this run gives it \(--lr: "
                                         r"3e-3 then, 4e-3 now; --tie-output-projection: unset then, set now\)\. Give the "
                                         r"options it was trained with, another --work, or delete"):
        training.train("gmlm", "data/bin", save_dir, changed, 1)
    with pytest.raises(SystemExit, match=r"\(--amp: set then, unset now\)"):
        training.train("gmlm", "data/bin", save_dir, [flag for flag in flags if flag != "--amp"], 1)
    (save_dir / "final.pt").unlink()  # stopped before its end: resumed from checkpoint_last.pt under the same rule
    with pytest.raises(SystemExit, match=r"\(--lr: 3e-3 then, 4e-3 now; --tie-output-projection: unset then, set now\)"):
        training.train("gmlm", "data/bin", save_dir, changed, 1)


def test_the_tied_output_projection_reaches_every_t5_models_recipe_and_not_cmlms():
    from benchmarks.harness.run import parse_args, recipes

    tied = recipes(parse_args(["--work", "w", "--tie-output-projection"]))
    untied = recipes(parse_args(["--work", "w", "--no-tie-output-projection"]))
    assert sorted(tied) == ["ar", "gmlm", "gmlm_scratch", "teacher"]  # CMLM trains with its stock recipe
    assert all(tied[name] == recipe + ["--tie-output-projection"] and untied[name] == recipe
               for name, recipe in RECIPES.items())
    assert recipes(parse_args(["--work", "w"])) == (tied if TIE_OUTPUT_PROJECTION else untied)


def test_a_stage_whose_result_file_exists_is_not_run_again(tmp_path):
    from benchmarks.harness.cache import cached_json

    runs = []

    def compute():
        runs.append(1)
        return {"rows": [1, 2]}

    path = tmp_path / "stage" / "result.json"
    assert cached_json(path, compute) == {"rows": [1, 2]} == cached_json(path, compute)
    assert runs == [1]


def test_a_stored_result_is_computed_again_when_its_inputs_change(tmp_path):
    from benchmarks.harness.cache import cached_json

    runs = []

    def compute():
        runs.append(1)
        return {"bleu": len(runs)}

    path = tmp_path / "rows" / "test.gmlm_p5.json"
    mode = {"gmlm_p5": ["--iter-decode-max-iter", "4"]}
    mean = {"gmlm_p5": ["--iter-decode-max-iter", "4", "--length-choice", "mean"]}
    assert cached_json(path, compute, inputs=mode) == {"bleu": 1}
    assert cached_json(path, compute, inputs=mode) == {"bleu": 1}  # same flags: kept
    assert cached_json(path, compute, inputs=mean) == {"bleu": 2}  # new flags: decoded again
    assert cached_json(path, compute, inputs=mean) == {"bleu": 2}
    assert json.loads((tmp_path / "rows" / "test.gmlm_p5.inputs.json").read_text()) == mean
    (tmp_path / "rows" / "test.gmlm_p5.inputs.json").unlink()  # a row stored before inputs were kept
    assert cached_json(path, compute, inputs=mean) == {"bleu": 3}
    assert runs == [1, 1, 1]


def test_the_benchmark_report_names_repository_paths_relative_to_it(tmp_path, monkeypatch):
    from benchmarks.harness import report

    monkeypatch.setattr(report, "markdown", lambda result: json.dumps(result))
    monkeypatch.setattr(report, "plot", lambda tables, path: None)
    checkpoint = str(ROOT / "work" / "bench" / "models" / "ar" / "final.pt")
    report.write_report({"tables": {}, "models": {"ar": {"checkpoint": checkpoint}}}, tmp_path)
    written = json.loads((tmp_path / "results.json").read_text())
    assert written["models"]["ar"]["checkpoint"] == "work/bench/models/ar/final.pt"
    assert json.loads((tmp_path / "RESULTS.md").read_text()) == written


def test_time_left_is_the_planned_minutes_of_the_starting_stage_and_every_later_one(capsys):
    from benchmarks.harness.progress import Progress

    progress = Progress(3, [1.0, 20.0, 4.0])
    progress.stage(2, "train")
    assert re.search(r"== \[2/3\] train \(0\.0 min elapsed, about 24 min left\)", capsys.readouterr().out)
    progress.stage(3, "report")
    assert "about 4 min left" in capsys.readouterr().out
    with pytest.raises(ValueError, match="2 planned durations for 3 stages"):
        Progress(3, [1.0, 2.0])


@pytest.mark.parametrize("ar_minutes, minutes, longer", [(13, 47, 2), (30, 5, 2), (2, 60, 1)])
def test_the_time_left_plan_follows_the_longer_of_the_two_training_chains(ar_minutes, minutes, longer):
    from benchmarks.harness.run import STAGES, parse_args, planned_minutes

    args = parse_args(["--work", "w", "--ar-minutes", str(ar_minutes), "--minutes", str(minutes)])
    plan = planned_minutes(args)
    assert len(plan) == STAGES and all(stage >= 0 for stage in plan)
    _, teacher, distill, rest = plan[:4]
    assert teacher == ar_minutes
    chain = {1: ar_minutes + distill + 2 * minutes,  # teacher, distillation, GMLM, AR baseline
             2: 2 * (ar_minutes + minutes)}  # GMLM from scratch, then CMLM
    assert chain[longer] > chain[3 - longer]
    assert teacher + distill + rest == pytest.approx(chain[longer])


def test_the_budget_rule_as_planned():
    from benchmarks.harness.run import budgets, parse_args

    plan = budgets(parse_args(["--work", "w", "--ar-minutes", "30", "--minutes", "18"]))
    assert plan["teacher"][0] == 30 and plan["gmlm"][0] == 18
    assert all(plan[name][0] == 48 for name in ("ar", "gmlm_scratch", "cmlm"))
    with pytest.raises(SystemExit, match="--ar-minutes and --minutes must be > 0"):
        parse_args(["--work", "w", "--minutes", "0"])


@pytest.mark.parametrize("before", ["7", None])
def test_training_threads_reach_subprocesses_and_the_callers_value_comes_back(monkeypatch, before):
    from benchmarks.harness.training import subprocess_threads

    if before is None:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    else:
        monkeypatch.setenv("OMP_NUM_THREADS", before)
    seen = "import os; print(os.environ['OMP_NUM_THREADS'])"
    with pytest.raises(RuntimeError):
        with subprocess_threads(2):
            assert subprocess.run([sys.executable, "-c", seen], capture_output=True, text=True).stdout.strip() == "2"
            raise RuntimeError("a failed stage")
    assert os.environ.get("OMP_NUM_THREADS") == before


def test_a_running_jobs_log_shows_each_line_the_child_has_printed(tmp_path):
    import threading
    import time

    from benchmarks.harness.training import run_logged

    log, release = tmp_path / "train.log", tmp_path / "release"
    # the child prints a line, then waits for the test to release it: the line must reach the log meanwhile
    child = ("import os, time\n"
             "print('| INFO | train | epoch 001 | loss 9.9')\n"
             "deadline = time.time() + 60\n"
             f"while not os.path.exists({str(release)!r}) and time.time() < deadline: time.sleep(0.05)\n")
    job = threading.Thread(target=run_logged, args=("toy", [sys.executable, "-c", child], log))
    job.start()
    try:
        deadline = time.time() + 30
        while time.time() < deadline and "epoch 001" not in (log.read_text() if log.exists() else ""):
            time.sleep(0.05)
        assert "epoch 001" in log.read_text(), "the line stayed in a buffer while the job ran"
        assert job.is_alive()
    finally:
        release.touch()
        job.join()


def test_mixed_data_gives_fairseq_train_the_distilled_and_the_raw_pairs_together(tmp_path):
    from benchmarks.harness.training import mixed_data
    from conftest import build_task_and_model, run_cli
    from fairseq_gmlm.errors import UsageError

    (tmp_path / "dict.txt").write_text("".join(f"w{i} 1\n" for i in range(12)))
    folders = {}
    for name, seed in (("raw", 0), ("distilled", 1)):  # two corpora of one vocabulary: w0..w11 reversed
        write_reversal_corpus(tmp_path / f"{name}_text", {"train": 30 if name == "raw" else 20, "valid": 5}, seed=seed)
        folders[name] = tmp_path / name
        run_cli("fairseq-preprocess", "--source-lang", "src", "--target-lang", "tgt", "--trainpref",
                tmp_path / f"{name}_text" / "train", "--validpref", tmp_path / f"{name}_text" / "valid",
                "--srcdict", tmp_path / "dict.txt", "--tgtdict", tmp_path / "dict.txt", "--destdir", folders[name],
                "--workers", "1")
    mixed = mixed_data(tmp_path / "work", str(folders["raw"]), str(folders["distilled"]))
    assert mixed_data(tmp_path / "work", str(folders["raw"]), str(folders["distilled"])) == mixed  # reruns

    def pairs(folder):
        """Training and valid (source, target) pairs as translation_gmlm loads them for fairseq-train (training
        with combine=True: every shard)."""
        task = build_task_and_model(Path(folder), words=None)[0]
        loaded = {}
        for split in ("train", "valid"):
            task.load_dataset(split, combine=split == "train")
            data = task.dataset(split)
            loaded[split] = sorted((tuple(data[i]["source"].tolist()), tuple(data[i]["target"].tolist()))
                                   for i in range(len(data)))
        return loaded

    # with the task's defaults: fairseq's own --upsample-primary default (-1) fails on a second shard
    together, distilled, raw = pairs(mixed), pairs(folders["distilled"]), pairs(folders["raw"])
    assert len(together["train"]) == 50 and together["train"] == sorted(distilled["train"] + raw["train"])
    assert together["valid"] == distilled["valid"]
    with pytest.raises(UsageError, match="--upsample-primary must be at least 1"):
        build_task_and_model(Path(mixed), "--upsample-primary", "-1", words=None)
    (folders["raw"] / "dict.tgt.txt").write_text("w0 1\n")
    with pytest.raises(SystemExit, match="dict.tgt.txt differs .*one vocabulary"):
        mixed_data(tmp_path / "other", str(folders["raw"]), str(folders["distilled"]))


@pytest.mark.slow
def test_time_decoding_times_flag_sets_on_the_benchmark_models_and_compares_their_outputs(pipeline):
    work, _, _ = pipeline
    command = [sys.executable, str(ROOT / "scripts" / "time_decoding.py"), "--work", str(work), "--config", "gmlm_p5",
               "--compare", "together=--length-group-size 0", "by3=--length-group-size 3",
               "one-pass=--iter-decode-max-iter 0", "bf16=--bf16",
               "--latency-sentences", "2", "--large-batch", "8", "--repeats", "1", "--threads", "1"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300,
                            env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line.split(" | ") for line in result.stdout.splitlines() if line.startswith("| rev-")]
    assert [(row[0], row[1]) for row in rows] == [(f"| {corpus}", name) for corpus in CORPORA
                                                  for name in ("together", "by3", "one-pass", "bf16")]
    for row in rows:
        assert float(row[3]) > 0 and float(row[4]) > 0
    identical = {row[1]: row[5] for row in rows if row[0] == "| rev-a"}
    assert identical["together"] == identical["by3"] == f"{TEST_SIZE}/{TEST_SIZE} |"  # grouping changes no output
    bad = subprocess.run([sys.executable, str(ROOT / "scripts" / "time_decoding.py"), "--work", str(work),
                          "--config", "nonsense", "--compare", "a=--beam 1"], capture_output=True, text=True)
    assert bad.returncode != 0 and "--config nonsense: not a benchmark configuration" in bad.stderr


def test_time_decoding_decodes_a_bf16_set_with_a_bfloat16_copy_and_refuses_fp16_and_amp():
    spec = importlib.util.spec_from_file_location("time_decoding", ROOT / "scripts" / "time_decoding.py")
    time_decoding = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(time_decoding)
    args = time_decoding.parse_args(["--work", "w", "--config", "gmlm_p5",
                                     "--compare", "fp32=--length-group-size 0", "bf16=--bf16 --length-group-size 0"])
    # the flag picks the model copy and never reaches the generator (which would ignore it)
    assert args.sets == [("fp32", "--length-group-size 0", "fp32", ["--length-group-size", "0"]),
                         ("bf16", "--bf16 --length-group-size 0", "bf16", ["--length-group-size", "0"])]
    for flag in ("--fp16", "--amp"):
        message = f"{flag}: decoding flags cannot change the precision"
        bad = subprocess.run([sys.executable, str(ROOT / "scripts" / "time_decoding.py"), "--work", "w",
                              "--config", "gmlm_p5", "--compare", f"x={flag}"], capture_output=True, text=True)
        assert bad.returncode != 0 and message in bad.stderr and f"--compare 'x={flag}'" in bad.stderr
    from benchmarks.harness.systems import Config, used_passes
    # a copy's key keeps the model's pass count: fairseq's CMLM reports the 0-based index of its last pass
    assert used_passes(Config("c", "c", "cmlm@bf16", 5), 4) == used_passes(Config("c", "c", "cmlm", 5), 4) == 5


def test_the_gpu_preset_sizes_the_run_for_a_lent_gpu_and_explicit_flags_win():
    from benchmarks.harness.run import budgets, parse_args

    args = parse_args(["--work", "w", "--gpu"])
    assert (args.arch, args.jobs, args.train_threads, args.precision) == ("gmlm_t5_small", 4, 2, "bf16")
    assert args.save_every == 0 and args.latency_sentences == 20 and args.distill_max_tokens == 32000
    assert args.results == ROOT / "benchmarks" / "gpu"
    assert budgets(args)["cmlm"][0] == 1.5  # the budget rule holds in the preset too
    chosen = parse_args(["--work", "w", "--gpu", "--jobs", "3", "--fp16", "--ar-minutes", "2"])
    assert (chosen.jobs, chosen.precision, chosen.ar_minutes) == (3, "fp16", 2.0)
    plain = parse_args(["--work", "w"])
    assert (plain.jobs, plain.train_threads, plain.precision, plain.save_every) == (2, 1, "fp32", 0)
    assert (plain.ar_minutes, plain.minutes) == (13.0, 47.0)
    assert plain.distill_max_tokens is None  # gmlm-distill keeps its own default
    with pytest.raises(SystemExit, match="--tiny and --gpu are two presets"):
        parse_args(["--work", "w", "--gpu", "--tiny"])
    with pytest.raises(SystemExit, match="--jobs must be >= 1"):
        parse_args(["--work", "w", "--jobs", "0"])


def test_save_every_zero_saves_no_state_at_an_epoch_end_or_interval():
    from benchmarks.harness.training import common_flags, pairs

    flags = dict(pairs(common_flags(1.0, 0, False, cpu=True, save_every=0, keep=1)))
    assert flags["--save-interval-updates"] == "0" and int(flags["--save-interval"]) > int(flags["--max-epoch"])
    assert dict(pairs(common_flags(1.0, 0, False, cpu=True, save_every=100, keep=1)))["--save-interval"] == "1"


@pytest.mark.parametrize("tiny, scale, tokens, warmup", [(False, 1.0, "4096", "200"), (False, 0.5, "2048", "400"),
                                                        (True, 0.5, "2048", "20")])
def test_a_smaller_batch_warms_up_over_more_updates_of_the_same_tokens(tiny, scale, tokens, warmup):
    from benchmarks.harness.training import common_flags, pairs

    flags = dict(pairs(common_flags(1.0, 0, tiny, cpu=True, save_every=100, keep=1, batch_scale=scale)))
    assert (flags["--max-tokens"], flags["--warmup-updates"]) == (tokens, warmup)


def test_each_system_trains_with_its_measured_batch_and_the_report_says_so():
    from benchmarks.harness.report import batch_text
    from benchmarks.harness.run import batch_scale, parse_args

    assert BATCH_SCALE["gmlm"] == BATCH_SCALE["gmlm_scratch"]  # the scratch twin keeps the GMLM's recipe
    cpu, gpu = parse_args(["--work", "w"]), parse_args(["--work", "w", "--gpu"])
    assert [batch_scale(cpu, name) for name in ("teacher", "gmlm", "ar")] == [1.0, BATCH_SCALE["gmlm"], BATCH_SCALE["ar"]]
    assert batch_scale(gpu, "gmlm") == batch_scale(gpu, "ar") == 1.0  # measured on the CPU only
    text = batch_text({"max_tokens": {"teacher": 4096, "gmlm": 2048}})
    assert "the teacher 4096" in text and "the GMLM 2048" in text
    assert batch_text({}) == ""


def test_every_model_trains_under_amp_where_the_cpu_has_native_bfloat16_unless_told(monkeypatch):
    from benchmarks.harness import run
    from benchmarks.harness.report import bfloat16_text, training_lines
    from benchmarks.harness.training import common_flags

    for native in (True, False):
        monkeypatch.setattr(run, "cpu_has_native_bfloat16", lambda: native)
        assert run.parse_args(["--work", "w"]).train_amp is native
        assert run.parse_args(["--work", "w", "--gpu"]).train_amp is False  # unmeasured on a GPU
        assert run.parse_args(["--work", "w", "--train-amp"]).train_amp is True
        assert run.parse_args(["--work", "w", "--no-train-amp"]).train_amp is False
    assert common_flags(1.0, 0, False, cpu=True, save_every=100, keep=1, amp=True)[-1] == "--amp"
    assert "--amp" not in common_flags(1.0, 0, False, cpu=True, save_every=100, keep=1)
    plan = {"ar_minutes": 13, "minutes": 33, "train_threads": 1, "dropout": 0.0, "gmlm_recipe": [], "ar_recipe": [],
            "schedule": [], "gmlm_decoding": []}
    assert "under `--amp`" in "".join(training_lines({"training": {**plan, "amp": True}}))
    assert "--amp" not in "".join(training_lines({"training": plan}))  # runs before 2026-12-06: float32
    assert bfloat16_text({"native_bfloat16": False}) == ", bfloat16 emulated"
    assert bfloat16_text({"native_bfloat16": True}) == ", bfloat16 native"
    assert bfloat16_text({"cpu": "AMD EPYC"}) == ""  # reports before 2026-12-07 did not record it


def test_averaging_states_that_are_never_saved_is_refused_naming_both_flags():
    from benchmarks.harness.run import parse_args

    with pytest.raises(SystemExit, match="--average-last 3 .* --save-every 0"):
        parse_args(["--work", "w", "--gpu", "--average-last", "3"])
    assert parse_args(["--work", "w", "--gpu", "--average-last", "3", "--save-every", "50"]).average_last == 3


def test_child_jobs_import_what_the_callers_pythonpath_holds(tmp_path, monkeypatch):
    """Packages installed with pip --target and put on PYTHONPATH (as on a machine without a virtual environment)
    stay importable in the training and distillation jobs, after the repository."""
    from benchmarks.harness.training import python_path, run_logged

    site = tmp_path / "site"
    site.mkdir()
    (site / "only_on_the_path.py").write_text("WHERE = 'site'\n")
    monkeypatch.setenv("PYTHONPATH", str(site))
    assert python_path().split(os.pathsep) == [str(ROOT), str(site)]
    log = tmp_path / "child.log"
    run_logged("child", [sys.executable, "-c", "import only_on_the_path, benchmarks; print(only_on_the_path.WHERE)"],
               log)
    assert log.read_text().strip().endswith("site")


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_the_gpu_script_stops_with_a_clear_message_where_there_is_no_cuda(tmp_path):
    environment = dict(os.environ, WORK=str(tmp_path / "gpu"),
                       PATH=f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}")
    result = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_benchmark.sh")], capture_output=True, text=True,
                            timeout=120, env=environment)
    assert result.returncode == 1
    assert "no CUDA device" in result.stderr and "python -m benchmarks.harness.run" in result.stderr
    assert not (tmp_path / "gpu" / "data").exists()  # nothing prepared, nothing trained


@pytest.mark.parametrize("count, batch_size, sentences", [(10, 1, 200), (10, 128, 1000), (3, 4, 10), (10, 1, 4)])
def test_timing_slices_are_whole_batches_that_cover_every_sentence_once_in_order(count, batch_size, sentences):
    ids = list(range(100, 100 + sentences))
    whole_batches = [ids[start:start + batch_size] for start in range(0, sentences, batch_size)]
    slices = pieces(whole_batches, count)
    assert sum(slices, []) == ids
    assert len(slices) == min(count, len(whole_batches))
    assert all(slices)
    # each slice is a run of whole batches: sliced or whole, translate() forms the same batches
    assert all(len(part) % batch_size == 0 for part in slices[:-1])
    sizes = [len(part) for part in slices]
    assert max(sizes) - min(sizes) <= 2 * batch_size  # as even as whole batches allow


def test_the_timing_schedule_runs_every_plan_on_a_slice_before_the_next_and_rotates_who_goes_first():
    plans = [("a", "latency"), ("b", "latency"), ("c", "throughput")]
    # a and b: 6 ids at batch 1 in 3 slices; c: batches of 4 and 2 ids, so two slices
    sliced = [[[0, 1], [2, 3], [4, 5]], [[0, 1], [2, 3], [4, 5]], [[0, 1, 2, 3], [4, 5]]]
    timed = list(schedule(plans, sliced, repeats=2))
    # every plan's slices are timed exactly once per round
    for round_index in range(2):
        for plan, parts in zip(plans, sliced):
            assert [part for r, p, part in timed if r == round_index and p is plan] == parts
    # slice by slice, the first plan one later at each slice; c has two slices, so it sits out the third
    first_round = [(p[0], part) for r, p, part in timed if r == 0]
    assert [name for name, _ in first_round] == ["a", "b", "c", "b", "c", "a", "a", "b"]
    assert [part for _, part in first_round[:5]] == [[0, 1], [0, 1], [0, 1, 2, 3], [2, 3], [4, 5]]
