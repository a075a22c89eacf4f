"""Reading checkpoints in fairseq 0.12.3 (``ve-fairseq``) under torch >= 2.6: three fixes.

Defect 1 in docs/fairseq-fixes.md. ``torch.load`` defaults to ``weights_only=True`` since torch 2.6 and refuses
any pickled class it does not know. fairseq checkpoints hold an ``argparse.Namespace`` (older ones) and numpy
arrays (summable BLEU counts among the meters in ``extra_state``), so every load fails with
``UnpicklingError``. ``allow_fairseq_checkpoint_globals`` allows exactly those classes instead of turning the safe
loader off.

Defect 2. A truncated checkpoint (a copy interrupted by a kill, a full disk) fails inside torch's zip reader with
a traceback that names no file. Every read goes through ``read_checkpoint``, which names the file and what to do.

Defect 3. fairseq-train resumes without giving the task the checkpoint's task state, so the task cannot check
that the checkpoint was trained on the same dictionary (a mismatch surfaces as a tensor size mismatch, or not at
all). While the trainer reads a checkpoint, the read hands the task state to the task's ``check_checkpoint``.

``guard_checkpoint_loading`` installs the fixes for defects 2 and 3.
"""

import argparse
import contextvars
import functools
import os
import pickle
import zipfile

import numpy
import torch

from fairseq_gmlm.checkpoints import CHECKPOINT_PATH_KEY
from fairseq_gmlm.errors import CheckpointError

# The task fairseq-train's trainer is resuming for, while it reads the checkpoint.
_resuming_task = contextvars.ContextVar("fairseq_gmlm_resuming_task", default=None)


def numpy_reconstruct():
    """numpy's array-unpickling function ``_reconstruct``: in ``numpy._core.multiarray`` from NumPy 2, in
    ``numpy.core.multiarray`` in NumPy 1.x (1.26 has no ``numpy._core`` attribute)."""
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


def checkpoint_globals() -> list:
    """The classes and functions a fairseq checkpoint pickles, for ``torch.serialization.add_safe_globals``."""
    allowed = [argparse.Namespace, numpy.ndarray, numpy.dtype, numpy_reconstruct()]
    allowed += [getattr(numpy.dtypes, name) for name in dir(numpy.dtypes) if name.endswith("DType")]
    return allowed


def allow_fairseq_checkpoint_globals() -> None:
    """Defect 1: let torch's safe loader read what fairseq pickles into a checkpoint."""
    torch.serialization.add_safe_globals(checkpoint_globals())


def read_checkpoint(load, path, *args, **kwargs):
    """``load(path, ...)`` (fairseq's ``load_checkpoint_to_cpu``), turning an unreadable file into an error that
    names it. A file cut short (a copy interrupted by a kill, a full disk) fails inside torch's zip reader."""
    try:
        return load(path, *args, **kwargs)
    except FileNotFoundError:
        raise
    except (RuntimeError, OSError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile) as error:
        raise CheckpointError(
            f"cannot read checkpoint {path} ({os.path.getsize(path) if os.path.exists(path) else 0} bytes): it is "
            f"truncated or not a fairseq checkpoint ({str(error).split('. ')[0]}). Delete it or move it away; "
            f"to resume from an "
            f"earlier one give --restore-file checkpoint<N>.pt from the same --save-dir"
        ) from error


def guard_checkpoint_loading() -> None:
    """Defects 2 and 3: route every checkpoint read of fairseq-train/-generate/-interactive through
    ``read_checkpoint``, and let the task check the checkpoint it resumes from.

    fairseq has no hook between its trainer and ``torch.load``; both the trainer and
    ``load_model_ensemble_and_task`` call ``checkpoint_utils.load_checkpoint_to_cpu`` through the module, so
    wrapping that one attribute covers every load. Idempotent.
    """
    from fairseq import checkpoint_utils

    load = checkpoint_utils.load_checkpoint_to_cpu
    if getattr(load, "fairseq_gmlm", False):
        return

    @functools.wraps(load)
    def load_checkpoint_to_cpu(path, *args, **kwargs):
        state = read_checkpoint(load, path, *args, **kwargs)
        if isinstance(state, dict) and isinstance(state.get("task_state"), dict):
            check = getattr(_resuming_task.get(), "check_checkpoint", None)
            if check is not None:
                check(state["task_state"], path)
            state["task_state"][CHECKPOINT_PATH_KEY] = path  # lets the task name the file in its own checks
        return state

    load_checkpoint_to_cpu.fairseq_gmlm = True
    checkpoint_utils.load_checkpoint_to_cpu = load_checkpoint_to_cpu

    # fairseq-train restores no task state, so the task's own check would not run on resume: let the read
    # above know which task the trainer is loading for.
    from fairseq.trainer import Trainer

    resume = Trainer.load_checkpoint

    @functools.wraps(resume)
    def load_checkpoint(self, *args, **kwargs):
        token = _resuming_task.set(self.task)
        try:
            return resume(self, *args, **kwargs)
        finally:
            _resuming_task.reset(token)

    Trainer.load_checkpoint = load_checkpoint
