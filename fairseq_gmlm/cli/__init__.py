"""Command-line tools users run, installed as console scripts (see ``[project.scripts]`` in pyproject.toml):

    gmlm-prepare-data    prepare_data.py    raw parallel text -> sentencepiece -> fairseq binaries
    gmlm-distill         distill.py         sequence-level distillation with a teacher checkpoint
    gmlm-convert-hf-t5   convert_hf_t5.py   a local Hugging Face T5 -> a gmlm_t5 or t5_ar checkpoint
    gmlm-sweep           sweep.py           decoding flag sets of one checkpoint on a split, scored
    gmlm-diagnose        diagnose.py        report and plots of a --refinement-diagnostics trace

Each also runs as ``python -m fairseq_gmlm.cli.<module>`` and, from a checkout, as ``python scripts/<module>.py``
(``scripts/sweep_decoding.py`` for the sweep). ``split_decoding.py`` holds the in-process decoding and scoring
that the sweep shares with the benchmark harness.
``fairseq_gmlm/__init__.py`` does not import this package, so ``--user-dir fairseq_gmlm`` stays as light as before.
"""

from pathlib import Path

PLUGIN = str(Path(__file__).resolve().parents[1])  # the fairseq_gmlm package folder, for fairseq's --user-dir
