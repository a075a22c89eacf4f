"""Copies of a saved checkpoint in fairseq 0.12.3 (``ve-fairseq``) are not atomic: defect 4 in
docs/fairseq-fixes.md.

fairseq writes each checkpoint once (atomically, through a ``.tmp`` file and a rename) and then *copies* it to
the other names due, ``checkpoint_last.pt`` among them, with a plain ``shutil.copyfile``
(``fairseq.file_io.PathManager.copy``). A job killed during that copy leaves a truncated ``checkpoint_last.pt``,
the file a restart resumes from. ``make_checkpoint_copies_atomic`` gives ``checkpoint_utils`` a PathManager whose
local copies go through a temporary file and a rename, so a job killed at any moment leaves only whole files.
"""

import os
import shutil


def atomic_copy(src_path: str, dst_path: str, overwrite: bool = False) -> bool:
    """Copy through ``dst_path + '.tmp'`` and a rename, so a kill mid-copy never leaves a cut ``dst_path``."""
    if os.path.exists(dst_path) and not overwrite:
        return False
    partial = dst_path + ".tmp"
    shutil.copyfile(src_path, partial)
    os.replace(partial, dst_path)
    return True


def make_checkpoint_copies_atomic() -> None:
    """Replace the PathManager of ``fairseq.checkpoint_utils`` by one whose local copies are atomic. Idempotent."""
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
