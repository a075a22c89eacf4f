"""Loading fairseq checkpoints under torch >= 2.6.

``torch.load`` now defaults to ``weights_only=True`` and refuses any pickled class it does not know. fairseq
checkpoints hold an ``argparse.Namespace`` (older ones) and numpy arrays (summable BLEU counts among the
meters in ``extra_state``), so every load fails (fairseq-notes.md, defect 1). We allow exactly those classes
instead of turning the safe loader off.

Reading a checkpoint also goes through ``read_checkpoint`` (see ``guard_checkpoint_loading``), so a truncated
file stops with a message naming it rather than a zip-reader error from inside torch; and the copies fairseq
makes of a saved checkpoint (``checkpoint_last.pt``, ...) are atomic (``make_checkpoint_copies_atomic``), so a
job killed at any moment leaves only whole files behind.
"""

import argparse
import contextvars
import functools
import hashlib
import os
import pickle
import shutil
import zipfile

import numpy
import torch

from fairseq_gmlm.errors import CheckpointError, UsageError

# Key under which the loaded file's path travels in ``state["task_state"]`` to the task's ``load_state_dict``.
CHECKPOINT_PATH_KEY = "fairseq_gmlm_checkpoint_path"
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
    """Route every checkpoint read of fairseq-train/-generate/-interactive through ``read_checkpoint``.

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


def dictionary_fingerprint(dictionary) -> dict:
    """What a checkpoint records about the dictionary it was trained with (after <mask> and <length>)."""
    digest = hashlib.md5("\n".join(dictionary.symbols).encode("utf-8")).hexdigest()
    return {"size": len(dictionary), "md5": digest}


def check_dictionary(saved: dict, dictionary, dictionary_path: str, checkpoint_path: str) -> None:
    """Raise when ``dictionary`` (read from ``dictionary_path``) is not the one the checkpoint was trained with.

    Without this check a different size surfaces as a tensor size mismatch inside ``load_state_dict``, and a
    same-sized but different dictionary silently translates into the wrong words.
    """
    current = dictionary_fingerprint(dictionary)
    if saved == current:
        return
    how = (f"it has {current['size']} symbols, the checkpoint's has {saved['size']}" if saved["size"] != current["size"]
           else f"both have {current['size']} symbols, but they differ")
    raise UsageError(
        f"the dictionary {dictionary_path} does not match checkpoint {checkpoint_path} ({how}, counting the <mask> and "
        f"<length> symbols the task adds): give the data directory the model was trained on, or binarise your data "
        f"with fairseq-preprocess --srcdict/--tgtdict set to the training data's dict.*.txt"
    )


def atomic_copy(src_path: str, dst_path: str, overwrite: bool = False) -> bool:
    """Copy through ``dst_path + '.tmp'`` and a rename, so a kill mid-copy never leaves a cut ``dst_path``."""
    if os.path.exists(dst_path) and not overwrite:
        return False
    partial = dst_path + ".tmp"
    shutil.copyfile(src_path, partial)
    os.replace(partial, dst_path)
    return True


def make_checkpoint_copies_atomic() -> None:
    """fairseq writes each checkpoint once (atomically, through a ``.tmp`` file) and then *copies* it to the other
    names due, ``checkpoint_last.pt`` among them, with a plain ``shutil.copyfile``: a job killed during that copy
    leaves a truncated ``checkpoint_last.pt``, the file a restart resumes from. Give ``checkpoint_utils`` a
    PathManager whose local copies are atomic. Idempotent."""
    from fairseq import checkpoint_utils
    from fairseq.file_io import PathManager

    if getattr(checkpoint_utils.PathManager, "fairseq_gmlm", False):
        return

    class AtomicCopyPathManager(PathManager):
        fairseq_gmlm = True

        @staticmethod
        def copy(src_path: str, dst_path: str, overwrite: bool = False) -> bool:
            if PathManager.path_requires_pathmanager(src_path) or PathManager.path_requires_pathmanager(dst_path):
                return PathManager.copy(src_path, dst_path, overwrite=overwrite)
            return atomic_copy(src_path, dst_path, overwrite=overwrite)

    checkpoint_utils.PathManager = AtomicCopyPathManager
