"""The real CLIs end to end on a slice of the bundled corpus: preprocess -> train (with --eval-bleu and
checkpoint selection on BLEU) -> resume -> generate -> interactive."""

import os
import re
import subprocess
import sys

import pytest

from conftest import PLUGIN, ROOT, run_cli

from fairseq_gmlm.cli.sweep import combinations

pytestmark = pytest.mark.slow  # every test here runs fairseq command lines or trains

EVAL_BLEU_ARGS = '{"iter_decode_max_iter": 1, "max_len_a": 1.2, "max_len_b": 5}'


def train_command(data, save_dir, max_epoch):
    return [
        data, "--user-dir", PLUGIN, "--task", "translation_gmlm", "--arch", "gmlm_t5_tiny", "--criterion", "gmlm_loss",
        "--optimizer", "adam", "--lr", "2e-3", "--lr-scheduler", "inverse_sqrt", "--warmup-updates", "10",
        "--max-tokens", "1024", "--max-epoch", str(max_epoch), "--cpu", "--save-dir", save_dir, "--no-progress-bar",
        "--log-interval", "1", "--seed", "3", "--eval-bleu", "--eval-bleu-args", EVAL_BLEU_ARGS,
        "--eval-bleu-remove-bpe", "sentencepiece", "--best-checkpoint-metric", "bleu", "--maximize-best-checkpoint-metric",
        "--no-epoch-checkpoints",
    ]


@pytest.fixture(scope="module")
def trained(ding_slice):
    data = ding_slice / "prepared" / "bin"
    save_dir = ding_slice / "checkpoints"
    first = run_cli("fairseq-train", *train_command(data, save_dir, 2))
    return data, save_dir, first.stdout + first.stderr


def test_training_logs_bleu_and_masked_accuracy_and_keeps_the_best_checkpoint(trained):
    data, save_dir, log = trained
    assert re.search(r"valid on 'valid' subset .*\| bleu [\d.]+", log)
    assert re.search(r"mask_acc [\d.]+", log)
    assert (save_dir / "checkpoint_best.pt").exists() and (save_dir / "checkpoint_last.pt").exists()
    assert "detected shared parameter" not in log  # fairseq defect 11: bias-free layers are not shared parameters


def test_resume_from_checkpoint_last_continues_the_update_count(trained):
    data, save_dir, log = trained
    updates_before = int(re.findall(r"num_updates (\d+)", log)[-1])
    resumed = run_cli("fairseq-train", *train_command(data, save_dir, 3))
    text = resumed.stdout + resumed.stderr
    # fairseq names the epoch it resumes into: epoch 2 ended, so epoch 3 begins at the saved update count
    assert re.search(rf"Loaded checkpoint .*checkpoint_last\.pt \(epoch 3 @ {updates_before} updates\)", text)
    assert int(re.findall(r"num_updates (\d+)", text)[-1]) > updates_before


def test_generate_translates_every_test_sentence_with_at_most_five_passes(trained):
    data, save_dir, _ = trained
    result = run_cli(
        "fairseq-generate", data, "--user-dir", PLUGIN, "--task", "translation_gmlm",
        "--path", save_dir / "checkpoint_best.pt", "--iter-decode-max-iter", "4", "--batch-size", "8",
        "--cpu", "--remove-bpe", "sentencepiece", "--print-step", "--max-len-a", "1.2", "--max-len-b", "5",
    )
    ids = sorted(int(m) for m in re.findall(r"^H-(\d+)\t", result.stdout, re.M))
    assert ids == list(range(50))  # 50 is not a multiple of the default --required-batch-size-multiple 8
    steps = [int(s) for s in re.findall(r"^I-\d+\t(\d+)", result.stdout, re.M)]
    assert len(steps) == 50 and all(1 <= s <= 5 for s in steps)
    assert "<mask>" not in result.stdout and "<length>" not in result.stdout


def test_interactive_answers_each_input_line_in_order(trained, ding_slice):
    data, save_dir, _ = trained
    lines = ["Das ist gut.", "Ich gehe nach Hause.", "Wo ist der Bahnhof?", "Er findet keine Schonung."]
    result = run_cli(
        "fairseq-interactive", data, "--user-dir", PLUGIN, "--task", "translation_gmlm",
        "--path", save_dir / "checkpoint_last.pt", "--iter-decode-max-iter", "4", "--cpu",
        "--bpe", "sentencepiece", "--sentencepiece-model", ding_slice / "prepared" / "spm.model",
        "--source-lang", "de", "--target-lang", "en", "--buffer-size", "3", "--batch-size", "3",
        input_text="\n".join(lines) + "\n",
    )
    sources = re.findall(r"^S-(\d+)\t(.*)$", result.stdout, re.M)
    hypotheses = re.findall(r"^D-(\d+)\t", result.stdout, re.M)
    assert [int(i) for i, _ in sources] == list(range(len(lines)))
    assert [int(i) for i in hypotheses] == list(range(len(lines)))


def test_sweep_decoding_scores_every_combination_of_a_checkpoint(trained, ding_slice, tmp_path):
    data, save_dir, _ = trained
    table = tmp_path / "sweep.md"
    subprocess.run([sys.executable, "-m", "fairseq_gmlm.cli.sweep", "--data", str(data), "--path",
                    str(save_dir / "checkpoint_best.pt"), "--reference", str(ding_slice / "raw" / "valid.en"),
                    "--subset", "valid", "--max-iter", "2", "--out", str(table)],
                   check=True, capture_output=True, env=dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT)))
    rows = [line.split("|")[1:-1] for line in table.read_text().splitlines()[2:] if line.startswith("| ")]
    assert len(combinations()) == 2 * 2 * 3 * 2 - 4  # passthrough + initial without stutter on = previous, per init
    assert len(rows) == 20 + 3  # every combination, the best 3 again with 3 length candidates
    assert sorted(tuple(cell.strip() for cell in row[:4]) for row in rows if row[4].strip() == "1") == sorted(
        tuple(combo.values()) for combo in combinations())
    bleu = [float(row[5]) for row in rows]
    assert bleu == sorted(bleu, reverse=True)
    assert all(0 < float(row[7]) <= 3 for row in rows)  # mean passes within --iter-decode-max-iter 2 + 1


def test_sweep_decoding_compares_named_flag_sets_in_the_order_given(trained, ding_slice, tmp_path):
    data, save_dir, _ = trained
    table = tmp_path / "compare.md"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "sweep_decoding.py"), "--data", str(data), "--path",
                    str(save_dir / "checkpoint_best.pt"), "--reference", str(ding_slice / "raw" / "valid.en"),
                    "--subset", "valid", "--out", str(table), "--compare", "one=--iter-decode-max-iter 0",
                    "forced=--iter-decode-max-iter 2 --iter-decode-force-max-iter"],
                   check=True, capture_output=True, env=dict(os.environ, OMP_NUM_THREADS="1"))
    rows = [[cell.strip() for cell in line.split("|")[1:-1]] for line in table.read_text().splitlines()[2:]
            if line.startswith("| ")]
    assert [row[0] for row in rows] == ["one", "forced"]
    assert [float(row[6]) for row in rows] == [1.0, 3.0]  # mean passes: one pass; three, forced


def test_decoding_flag_sets_refuse_precision_flags_that_the_loaded_model_would_silently_ignore():
    from fairseq_gmlm.cli.split_decoding import refuse_precision_flags
    from fairseq_gmlm.cli.sweep import parse_flag_set

    assert parse_flag_set("one=--iter-decode-max-iter 0") == ("one", ["--iter-decode-max-iter", "0"])
    for flag in ("--bf16", "--fp16", "--amp"):
        with pytest.raises(SystemExit, match=f"--compare 'x=--beam 1 {flag}': {flag}: decoding flags cannot change"):
            parse_flag_set(f"x=--beam 1 {flag}")
    with pytest.raises(ValueError, match="--bf16 --amp: decoding flags cannot change the precision"):
        refuse_precision_flags(["--bf16", "--iter-decode-max-iter", "4", "--amp"])
    refuse_precision_flags(["--iter-decode-max-iter", "4"])  # other flags pass
    # the command line refuses the set before it looks for the checkpoint
    bad = subprocess.run([sys.executable, "-m", "fairseq_gmlm.cli.sweep", "--data", "missing", "--path", "missing.pt",
                          "--reference", "missing.en", "--compare", "a=--bf16"], capture_output=True, text=True)
    assert bad.returncode != 0 and "--compare 'a=--bf16': --bf16: decoding flags cannot change" in bad.stderr
