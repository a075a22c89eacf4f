"""``from_pretrained``: a trained gmlm_t5 or t5_ar as fairseq's hub interface translates as fairseq-interactive does."""

import json
import math
import os
import re
import subprocess
import sys

import pytest

from conftest import PLUGIN, ROOT, run_cli

LINES = ["Das ist gut.", "Ich gehe nach Hause.", "Wo ist der Bahnhof?"]
SYSTEMS = {  # model: (training flags, model class, decoding flags of fairseq-interactive, the same as keywords)
    "gmlm_t5": (["--task", "translation_gmlm", "--arch", "gmlm_t5_tiny", "--criterion", "gmlm_loss"],
                "fairseq_gmlm.models.gmlm_t5 import GMLMT5Model",
                ["--task", "translation_gmlm", "--iter-decode-max-iter", "4"], {"iter_decode_max_iter": 4}),
    "t5_ar": (["--task", "translation", "--arch", "t5_ar_tiny", "--criterion", "label_smoothed_cross_entropy"],
              "fairseq_gmlm.models.t5_ar import T5ARModel", ["--task", "translation", "--beam", "4"], {"beam": 4}),
}


@pytest.fixture(scope="module", params=list(SYSTEMS))
def trained(request, ding_slice):
    name = request.param
    data, save_dir = ding_slice / "prepared" / "bin", ding_slice / f"hub-{name}"
    run_cli("fairseq-train", data, "--user-dir", PLUGIN, *SYSTEMS[name][0], "--optimizer", "adam", "--lr", "2e-3",
            "--max-tokens", "1024", "--max-epoch", "4", "--cpu", "--save-dir", save_dir, "--no-epoch-checkpoints",
            "--seed", "3", "--no-progress-bar")
    return name, data, save_dir


def test_from_pretrained_translates_as_fairseq_interactive_in_a_fresh_process(trained, ding_slice, tmp_path):
    name, data, save_dir = trained
    _, model_import, interactive_flags, keywords = SYSTEMS[name]
    spm = ding_slice / "prepared" / "spm.model"
    interactive = run_cli(
        "fairseq-interactive", data, "--user-dir", PLUGIN, *interactive_flags, "--path", save_dir / "checkpoint_best.pt",
        "--cpu", "--bpe", "sentencepiece", "--sentencepiece-model", spm, input_text="\n".join(LINES) + "\n",
    )
    found = {int(index): (float(score), text)
             for index, score, text in re.findall(r"^D-(\d+)\t(\S+)\t(.*)$", interactive.stdout, re.M)}
    expected = [found[index] for index in range(len(LINES))]
    class_name = model_import.split()[-1]
    script = (
        f"import json\nfrom {model_import}\n"
        f"hub = {class_name}.from_pretrained({str(save_dir)!r}, data_name_or_path={str(data)!r}, "
        f"sentencepiece_model={str(spm)!r})\n"
        f"texts = hub.translate({LINES!r}, **{keywords!r})\n"
        f"hypotheses = hub.generate([hub.encode(line) for line in {LINES!r}], **{keywords!r})\n"
        f"print(json.dumps([[best[0]['score'].item(), text] for best, text in zip(hypotheses, texts)]))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=300,
                            env=dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT)))
    assert result.returncode == 0, result.stderr[-3000:]
    translated = json.loads(result.stdout.strip().splitlines()[-1])
    assert [text for _, text in translated] == [text for _, text in expected]
    assert all(text for _, text in expected), expected
    # fairseq-interactive prints scores in base 2 and decodes one line per batch, the hub all three together
    assert [score / math.log(2) for score, _ in translated] == pytest.approx([score for score, _ in expected], abs=1e-4)
