"""Data binarised with a dictionary per side (fairseq-preprocess without --joined-dictionary): gmlm_t5 and t5_ar get
a source and a target embedding, train, warm-start and translate through the real CLIs; joint data keeps one."""

import random
import re

import pytest
import torch

from conftest import PLUGIN, run_cli

SOURCE_WORDS, TARGET_WORDS = 30, 9  # dictionaries of different sizes (fairseq pads them to multiples of 8)


def write_corpus(directory, sizes):
    """Source: words s0..s29; target: the source reversed, each s<i> written t<i mod 9>."""
    rng = random.Random(0)
    directory.mkdir(parents=True, exist_ok=True)
    for split, count in sizes.items():
        sources = [[rng.randrange(SOURCE_WORDS) for _ in range(rng.randint(3, 6))] for _ in range(count)]
        (directory / f"{split}.src").write_text("".join(" ".join(f"s{i}" for i in s) + "\n" for s in sources))
        (directory / f"{split}.tgt").write_text(
            "".join(" ".join(f"t{i % TARGET_WORDS}" for i in reversed(s)) + "\n" for s in sources))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """The same text binarised twice: bin-separate (a dictionary per side) and bin-joint (--joined-dictionary)."""
    work = tmp_path_factory.mktemp("two-dictionaries")
    write_corpus(work / "raw", {"train": 400, "valid": 20, "test": 20})
    for name, extra in (("separate", []), ("joint", ["--joined-dictionary"])):
        run_cli("fairseq-preprocess", "--source-lang", "src", "--target-lang", "tgt", "--trainpref", work / "raw" / "train",
                "--validpref", work / "raw" / "valid", "--testpref", work / "raw" / "test", "--destdir", work / f"bin-{name}",
                "--workers", "1", *extra)
    return work


def train(data, save_dir, *flags):
    run_cli("fairseq-train", data, "--user-dir", PLUGIN, "--optimizer", "adam", "--lr", "2e-3", "--max-tokens", "512",
            "--max-update", "12", "--cpu", "--save-dir", save_dir, "--no-epoch-checkpoints", "--seed", "1",
            "--no-progress-bar", *flags)
    return save_dir / "checkpoint_last.pt"


GMLM = ["--task", "translation_gmlm", "--arch", "gmlm_t5_tiny", "--criterion", "gmlm_loss"]
AR = ["--task", "translation", "--arch", "t5_ar_tiny", "--criterion", "label_smoothed_cross_entropy",
      "--tie-output-projection"]


@pytest.fixture(scope="module")
def ar_separate(corpus):
    return train(corpus / "bin-separate", corpus / "ar-separate", *AR)


def translations(data, checkpoint, *flags):
    result = run_cli("fairseq-generate", data, "--user-dir", PLUGIN, "--path", checkpoint, "--cpu", "--batch-size", "8",
                     *flags)
    return [line.split("\t")[2].split() for line in result.stdout.splitlines() if re.match(r"H-\d+\t", line)]


def rows(checkpoint, name):
    return torch.load(checkpoint, map_location="cpu", weights_only=False)["model"][name].size(0)


def test_t5_ar_trains_and_beam_decodes_with_a_dictionary_per_side(corpus, ar_separate):
    data = corpus / "bin-separate"
    assert rows(ar_separate, "encoder.embed_tokens.weight") == 40 and rows(ar_separate, "decoder.embed_tokens.weight") == 16
    # (the stock task rounds batches down to --required-batch-size-multiple, dropping sentences; not ours)
    hypotheses = translations(data, ar_separate, "--task", "translation", "--beam", "2",
                              "--required-batch-size-multiple", "1")
    assert len(hypotheses) == 20
    assert all(word.startswith("t") for words in hypotheses for word in words)  # target words only


def test_gmlm_t5_warm_starts_trains_and_decodes_with_a_dictionary_per_side(corpus, ar_separate):
    data = corpus / "bin-separate"
    checkpoint = train(data, corpus / "gmlm-separate", *GMLM, "--init-from-ar", ar_separate)
    # each side's symbols plus <mask> and <length>, appended by the task to both dictionaries
    assert rows(checkpoint, "source_embed_tokens.weight") == 42 and rows(checkpoint, "embed_tokens.weight") == 18
    hypotheses = translations(data, checkpoint, "--task", "translation_gmlm", "--iter-decode-max-iter", "2")
    assert len(hypotheses) == 20
    assert all(re.fullmatch(r"t\d", word) for words in hypotheses for word in words)


def test_joint_dictionary_keeps_one_shared_embedding_and_refuses_a_warm_start_from_separate_ones(corpus, ar_separate):
    data = corpus / "bin-joint"
    checkpoint = train(data, corpus / "gmlm-joint", *GMLM)
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)["model"]
    assert "source_embed_tokens.weight" not in state and "embed_tokens.weight" in state
    refused = run_cli("fairseq-train", data, "--user-dir", PLUGIN, *GMLM, "--init-from-ar", ar_separate, "--cpu",
                      "--max-tokens", "512", "--max-update", "1", "--save-dir", corpus / "refused", check=False)
    assert refused.returncode != 0
    assert "a dictionary per side" in refused.stderr and "train the AR model on the same binarised data" in refused.stderr
