"""Loading fairseq checkpoints under torch >= 2.6.

``torch.load`` now defaults to ``weights_only=True`` and refuses any pickled class it does not know. fairseq
checkpoints hold an ``argparse.Namespace`` (older ones) and numpy arrays (summable BLEU counts among the
meters in ``extra_state``), so every load fails (fairseq-notes.md, defect 1). We allow exactly those classes
instead of turning the safe loader off.
"""

import argparse

import numpy
import torch


def checkpoint_globals() -> list:
    allowed = [argparse.Namespace, numpy.ndarray, numpy.dtype, numpy._core.multiarray._reconstruct]
    allowed += [getattr(numpy.dtypes, name) for name in dir(numpy.dtypes) if name.endswith("DType")]
    return allowed


def allow_fairseq_checkpoint_globals() -> None:
    torch.serialization.add_safe_globals(checkpoint_globals())
