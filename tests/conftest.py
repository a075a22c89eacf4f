"""Shared fixtures: a tiny binarised corpus built once per session from a slice of the bundled Ding corpus."""

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

REPO = Path(__file__).resolve().parents[1]
DING = REPO / "data" / "ding-de-en"
SLICES = {"train": 400, "valid": 40, "test": 40}  # sentence pairs per split


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory):
    """de->en: ``raw/{split}.{de,en}`` (first lines of each Ding split), a joint sentencepiece model
    ``spm.model`` (about 600 pieces) and fairseq binaries in ``bin/`` (joined dictionary)."""
    root = tmp_path_factory.mktemp("tiny_corpus")
    raw = root / "raw"
    raw.mkdir()
    for split, lines in SLICES.items():
        for lang in ("de", "en"):
            with open(DING / f"{split}.{lang}", encoding="utf-8") as f:
                head = [next(f) for _ in range(lines)]
            (raw / f"{split}.{lang}").write_text("".join(head), encoding="utf-8")
    subprocess.run(
        [sys.executable, str(REPO / "scripts" / "prepare_data.py"), "--raw", str(raw), "--src", "de", "--tgt", "en",
         "--out", str(root), "--vocab-size", "600", "--workers", "1"],
        check=True, capture_output=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    return SimpleNamespace(root=root, raw=raw, bin=root / "bin", spm_model=root / "spm.model", src="de", tgt="en")
