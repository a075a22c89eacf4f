"""The installed environment: the packages the project and its tests import load together.

ve-fairseq pulls in a torchaudio built for another torch, which fails to load (OSError) and breaks every program
that imports transformers; scripts/setup_env.sh removes it (docs/install.md). Each check runs in a fresh
interpreter, so nothing an earlier test imported or hid can make it pass.
"""

import importlib.util
import subprocess
import sys

import pytest


def run_fresh(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)


@pytest.mark.skipif(importlib.util.find_spec("transformers") is None, reason="transformers is a test-only extra")
def test_fairseq_and_transformers_import_together_in_a_fresh_process():
    result = run_fresh(
        "import fairseq, transformers\n"
        "from fairseq.models.transformer import TransformerModel\n"
        "from transformers import T5ForConditionalGeneration\n"
        "import fairseq_gmlm\n"
    )
    assert result.returncode == 0, result.stderr[-3000:]


def test_torchaudio_is_absent_or_loads():
    """A torchaudio that is installed but does not load is what breaks transformers (and fairseq's speech tasks)."""
    if importlib.util.find_spec("torchaudio") is None:
        return
    result = run_fresh("import torchaudio")
    assert result.returncode == 0, (
        "torchaudio is installed but does not load against this torch; scripts/setup_env.sh removes such a "
        "torchaudio (pip uninstall torchaudio; see docs/install.md):\n" + result.stderr[-2000:]
    )
