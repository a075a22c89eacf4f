"""Holding up: wrong use ends in one clear stderr line, bad input still gets one output line per input line,
long sources are truncated (not dropped), unreadable checkpoints are named, and decoding is deterministic.

The CLI tests share one checkpoint trained for a few updates on a slice of the Ding corpus: they check the
plumbing, not translation quality.
"""

import re
import shutil

import pytest
import torch

from conftest import PLUGIN, run_cli
from fairseq_gmlm.checkpoints import check_dictionary, dictionary_fingerprint
from fairseq_gmlm.errors import CheckpointError
from fairseq_gmlm.fairseq_fixes.checkpoint_copies import atomic_copy
from fairseq_gmlm.fairseq_fixes.checkpoint_loading import read_checkpoint
from fairseq_gmlm.fairseq_fixes.error_reporting import is_usage_error
from fairseq_gmlm.tasks.translation_gmlm import blank_empty_sources, truncate_source


# ---- pure parts ---------------------------------------------------------------------------------------------

def test_truncate_source_keeps_final_eos_when_too_long():
    eos = 2
    tokens = torch.tensor([5, 6, 7, 8, 9, eos])
    assert truncate_source(tokens, 4, eos).tolist() == [5, 6, 7, eos]
    assert truncate_source(tokens, 6, eos) is tokens


def test_blank_empty_sources_gives_empty_translation_when_source_is_only_eos():
    pad, eos = 1, 2
    src_tokens = torch.tensor([[pad, pad, eos], [5, 6, eos]])  # left-padded: sentence 0 is empty
    hypotheses = [[{"tokens": torch.tensor([7, eos]), "score": torch.tensor(-1.0),
                    "positional_scores": torch.tensor([-1.0, -1.0]), "alignment": None}] for _ in range(2)]
    blank_empty_sources(hypotheses, src_tokens, pad, eos)
    assert hypotheses[0][0]["tokens"].tolist() == [eos] and hypotheses[0][0]["positional_scores"].tolist() == [0.0]
    assert hypotheses[1][0]["tokens"].tolist() == [7, eos]


class _Dictionary:
    def __init__(self, symbols):
        self.symbols = symbols

    def __len__(self):
        return len(self.symbols)


def test_check_dictionary_names_both_files_when_sizes_differ():
    saved = dictionary_fingerprint(_Dictionary(["a", "b", "c"]))
    expected = r"dict\.en\.txt does not match checkpoint ck\.pt \(it has 2 symbols, the checkpoint's has 3"
    with pytest.raises(ValueError, match=expected):
        check_dictionary(saved, _Dictionary(["a", "b"]), "data/dict.en.txt", "ck.pt")


def test_check_dictionary_rejects_same_size_but_other_symbols():
    saved = dictionary_fingerprint(_Dictionary(["a", "b", "c"]))
    check_dictionary(saved, _Dictionary(["a", "b", "c"]), "dict.en.txt", "ck.pt")
    with pytest.raises(ValueError, match="both have 3 symbols, but they differ"):
        check_dictionary(saved, _Dictionary(["a", "c", "b"]), "dict.en.txt", "ck.pt")


def test_read_checkpoint_names_the_file_when_truncated(tmp_path):
    path = tmp_path / "checkpoint_last.pt"
    torch.save({"model": {"w": torch.zeros(100)}}, path)
    path.write_bytes(path.read_bytes()[:200])
    expected = f"cannot read checkpoint {re.escape(str(path))} \\(200 bytes\\)"
    with pytest.raises(CheckpointError, match=expected) as error:
        read_checkpoint(lambda p: torch.load(p), str(path))
    assert is_usage_error(error.value)


def test_is_usage_error_only_for_errors_raised_in_the_plugin():
    try:
        torch.zeros(2).view(3)
    except RuntimeError as error:
        assert not is_usage_error(error)
    try:
        truncate_source(torch.zeros(3), 0, 2).view(-1, 5)
    except RuntimeError as error:
        assert not is_usage_error(error)


# ---- through the command-line tools ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def trained(ding_slice, tmp_path_factory):
    """A gmlm_t5_tiny checkpoint after 12 updates, with its data directory and sentencepiece model."""
    save_dir = tmp_path_factory.mktemp("robustness_checkpoints")
    data = ding_slice / "prepared" / "bin"
    run_cli(
        "fairseq-train", data, "--user-dir", PLUGIN, "--task", "translation_gmlm", "--arch", "gmlm_t5_tiny",
        "--criterion", "gmlm_loss", "--optimizer", "adamw_fused", "--lr", "2e-3", "--max-tokens", "1024",
        "--max-update", "12", "--cpu", "--save-dir", save_dir, "--no-progress-bar", "--no-epoch-checkpoints",
        "--seed", "1",
    )
    return {"data": data, "checkpoint": save_dir / "checkpoint_last.pt", "spm": ding_slice / "prepared" / "spm.model"}


def generate(trained, *args, data=None, check=False):
    return run_cli(
        "fairseq-generate", data or trained["data"], "--user-dir", PLUGIN, "--path", trained["checkpoint"],
        "--cpu", "--iter-decode-max-iter", "3", "--max-len-a", "1.5", "--max-len-b", "5", *args, check=check,
    )


def assert_one_line_error(result, *fragments):
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    error_lines = [line for line in result.stderr.splitlines() if ": error: " in line]
    assert len(error_lines) == 1, result.stderr[-3000:]
    for fragment in fragments:
        assert fragment in error_lines[0]


@pytest.mark.slow
def test_generate_with_wrong_task_says_use_translation_gmlm(trained):
    result = generate(trained, "--task", "translation")
    assert_one_line_error(result, "use --task translation_gmlm")


@pytest.mark.slow
@pytest.mark.parametrize("tool", ["fairseq-generate", "fairseq-train"])
def test_other_dictionary_names_dictionary_and_checkpoint(trained, tmp_path, tool):
    data = tmp_path / "other"
    shutil.copytree(trained["data"], data)
    for lang in ("de", "en"):
        with open(data / f"dict.{lang}.txt", "a", encoding="utf-8") as f:
            f.write("neuewort 1\n")
    if tool == "fairseq-generate":
        checkpoint = trained["checkpoint"]
        result = generate(trained, "--task", "translation_gmlm", data=data)
    else:  # resuming in a --save-dir whose checkpoint_last.pt was trained on the original data
        checkpoint = tmp_path / "resume" / "checkpoint_last.pt"
        checkpoint.parent.mkdir()
        shutil.copy(trained["checkpoint"], checkpoint)
        result = run_cli("fairseq-train", data, "--user-dir", PLUGIN, "--task", "translation_gmlm", "--arch",
                         "gmlm_t5_tiny", "--criterion", "gmlm_loss", "--optimizer", "adamw_fused", "--lr", "1e-3",
                         "--max-tokens", "1024", "--max-update", "20", "--cpu", "--save-dir", checkpoint.parent,
                         check=False)
    assert_one_line_error(result, f"the dictionary {data / 'dict.en.txt'} does not match checkpoint {checkpoint}",
                          "--srcdict")


@pytest.mark.slow
@pytest.mark.parametrize("flag, value, message", [
    ("--iter-decode-max-iter", "-1", "--iter-decode-max-iter must be >= 0"),
    ("--iter-decode-with-beam", "0", "--iter-decode-with-beam must be >= 1"),
])
def test_generate_with_bad_decoding_flag_names_the_flag(trained, flag, value, message):
    result = generate(trained, "--task", "translation_gmlm", flag, value)
    assert_one_line_error(result, message)


@pytest.mark.slow
def test_generate_with_truncated_checkpoint_names_the_file(trained, tmp_path):
    truncated = tmp_path / "checkpoint_cut.pt"
    # Cut inside the zip: torch raises OSError here (RuntimeError when cut to 200 bytes).
    truncated.write_bytes(trained["checkpoint"].read_bytes()[:5000])
    result = run_cli("fairseq-generate", trained["data"], "--user-dir", PLUGIN, "--task", "translation_gmlm",
                     "--path", truncated, "--cpu", check=False)
    assert_one_line_error(result, f"cannot read checkpoint {truncated}", "truncated")


def hypotheses(stdout: str) -> dict:
    """id -> hypothesis string, from fairseq-generate/-interactive's ``H-<id>\\t<score>\\t<text>`` lines."""
    found = {}
    for line in stdout.splitlines():
        if line.startswith("H-"):
            head, _, text = line.split("\t", 2)
            found[int(head[2:])] = text
    return found


BAD_INPUT = [
    ("plain", "Ich habe keine Zeit."),
    ("empty", ""),
    ("whitespace", "   \t  "),
    ("too long", " ".join(["Das ist ein sehr langer Satz"] * 30)),
    ("out of vocabulary", "Ein Satz mit 猫 und ☃ und ✓ darin."),
    ("one token", "Ja"),
    ("mixed scripts", "Привет, wie geht es dir? 你好!"),
    ("plain", "Er kommt morgen."),
]


@pytest.mark.slow
def test_generate_translates_every_binarised_source_truncating_long_ones(trained, tmp_path):
    import sentencepiece

    pieces = sentencepiece.SentencePieceProcessor(model_file=str(trained["spm"]))
    sources = [text for _, text in BAD_INPUT]
    for lang, lines in (("de", sources), ("en", ["A reference."] * len(sources))):
        encoded = [" ".join(pieces.encode(line.strip(), out_type=str)) for line in lines]
        (tmp_path / f"test.{lang}").write_text("\n".join(encoded) + "\n", encoding="utf-8")
    run_cli("fairseq-preprocess", "--source-lang", "de", "--target-lang", "en", "--testpref", tmp_path / "test",
            "--srcdict", trained["data"] / "dict.de.txt", "--tgtdict", trained["data"] / "dict.en.txt",
            "--destdir", tmp_path / "bin", "--workers", "1")
    result = generate(trained, "--task", "translation_gmlm", "--max-source-positions", "32", "--remove-bpe",
                      "sentencepiece", data=tmp_path / "bin", check=True)
    found = hypotheses(result.stdout)
    assert sorted(found) == list(range(len(BAD_INPUT)))
    assert found[1] == "" and found[2] == ""
    assert "test: 2 empty source sentences (ids 1, 2): their translations are empty" in result.stderr
    assert ("test: 1 source sentences longer than --max-source-positions 32 (ids 3) are truncated to their first 31 "
            "tokens and EOS") in result.stderr


@pytest.mark.slow
@pytest.mark.parametrize("buffering", [[], ["--buffer-size", "5", "--batch-size", "3"]], ids=["line", "batched"])
def test_interactive_gives_one_output_per_input_line_in_order(trained, tmp_path, buffering):
    source = tmp_path / "input.de"
    source.write_text("\n".join(text for _, text in BAD_INPUT) + "\n", encoding="utf-8")
    result = run_cli(
        "fairseq-interactive", trained["data"], "--user-dir", PLUGIN, "--task", "translation_gmlm", "--path",
        trained["checkpoint"], "--cpu", "--input", source, "--bpe", "sentencepiece", "--sentencepiece-model",
        trained["spm"], "--max-source-positions", "32", "--iter-decode-max-iter", "3", *buffering,
    )
    found = hypotheses(result.stdout)
    assert sorted(found) == list(range(len(BAD_INPUT)))
    source_ids = [int(line.split("\t")[0][2:]) for line in result.stdout.splitlines() if line.startswith("S-")]
    assert source_ids == list(range(len(BAD_INPUT)))  # printed in input order
    assert found[1] == "" and found[2] == ""  # empty and whitespace-only lines translate to empty lines
    assert "input line 2 is empty: its translation is empty" in result.stderr
    assert "input line 3 is empty" in result.stderr
    assert "input line 4 has" in result.stderr and "more than --max-source-positions 32" in result.stderr
    assert re.search(r"input line 5: \d+ of \d+ tokens are not in the dictionary", result.stderr)


# fairseq-generate requires --beam = --nbest (1) with --sampling; the task itself ignores --beam.
@pytest.mark.slow
@pytest.mark.parametrize("sampling", [[], ["--sampling", "--sampling-topk", "5", "--beam", "1"]],
                         ids=["argmax", "sampling"])
def test_same_seed_gives_identical_output(trained, sampling):
    seeds = ["7", "7", "8"] if sampling else ["7", "7"]
    runs = [generate(trained, "--task", "translation_gmlm", "--seed", seed, *sampling, check=True) for seed in seeds]
    outputs = [hypotheses(run.stdout) for run in runs]
    assert len(outputs[0]) == 50 and outputs[0] == outputs[1]
    if sampling:  # the seed is what fixes the draws: another one changes them
        assert outputs[2] != outputs[0]


def test_atomic_copy_replaces_destination_whole_and_leaves_no_partial_file(tmp_path):
    source, destination = tmp_path / "checkpoint_1_10.pt", tmp_path / "checkpoint_last.pt"
    source.write_bytes(b"new" * 1000)
    destination.write_bytes(b"old")
    assert not atomic_copy(str(source), str(destination))  # no overwrite asked
    assert atomic_copy(str(source), str(destination), overwrite=True)
    assert destination.read_bytes() == source.read_bytes() and not list(tmp_path.glob("*.tmp"))


def test_fairseq_checkpoint_copies_go_through_atomic_copy():
    from fairseq import checkpoint_utils

    import fairseq_gmlm  # noqa: F401  (installs the guards)
    assert getattr(checkpoint_utils.PathManager, "fairseq_gmlm", False)
    assert getattr(checkpoint_utils.load_checkpoint_to_cpu, "fairseq_gmlm", False)


def test_fairseq_trainer_catalogues_tied_parameters_but_not_missing_biases():
    from fairseq import trainer
    from torch import nn

    import fairseq_gmlm  # noqa: F401  (installs the fixes)

    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(10, 4)
            self.proj = nn.Linear(4, 10, bias=False)  # a None bias, like every linear layer of the T5 blocks
            self.out = nn.Linear(4, 10, bias=False)
            self.out.weight = self.embed.weight  # really shared

    # fairseq's own catalogue also lists ['proj.bias', 'out.bias'], which the trainer logs as a shared parameter
    assert trainer._catalog_shared_params(Tied()) == [["embed.weight", "out.weight"]]

@pytest.mark.slow
@pytest.mark.parametrize("tool", ["fairseq-generate", "fairseq-interactive"])
@pytest.mark.parametrize("flag", ["--bf16", "--amp"])
def test_half_precision_flags_reach_generation_and_every_sentence_is_translated(trained, tmp_path, tool, flag):
    if tool == "fairseq-generate":
        result = generate(trained, "--task", "translation_gmlm", flag, check=True)
        expected = 50
    else:
        source = tmp_path / "input.de"
        source.write_text("Guten Morgen.\nWo ist der Bahnhof?\nDanke.\n", encoding="utf-8")
        result = run_cli("fairseq-interactive", trained["data"], "--user-dir", PLUGIN, "--task", "translation_gmlm",
                         "--path", trained["checkpoint"], "--cpu", "--input", source, "--bpe", "sentencepiece",
                         "--sentencepiece-model", trained["spm"], "--iter-decode-max-iter", "3", flag)
        expected = 3
    weights = "bfloat16" if flag == "--bf16" else "float32"
    assert f"generation on cpu: torch.{weights} weights, forward autocast to torch.bfloat16" in result.stderr
    assert sorted(hypotheses(result.stdout)) == list(range(expected))
