"""Choice between NVIDIA Apex fused kernels and torch's native ones.

Apex is optional (a source build; the PyPI package named ``apex`` is something else). Where it imports and CUDA
is available we use its ``FusedRMSNorm``; otherwise ``torch.nn.RMSNorm``. Both keep the scale in a parameter
named ``weight``, so checkpoints move between the two unchanged.
"""

import functools
import logging

from torch import nn
import torch

logger = logging.getLogger(__name__)


@functools.lru_cache(maxsize=None)
def apex_available() -> bool:
    try:
        import apex.normalization  # noqa: F401
    except Exception:  # ImportError, or a broken build that fails while loading its CUDA extension
        return False
    return True


def use_apex(cuda_available: bool, apex_importable: bool) -> bool:
    """The selection rule, kept pure so both branches can be tested on any machine."""
    return cuda_available and apex_importable


@functools.lru_cache(maxsize=None)
def _log_choice(name: str) -> None:
    logger.info("fairseq_gmlm kernels: RMSNorm via %s", name)


def make_rms_norm(dim: int, eps: float) -> nn.Module:
    if use_apex(torch.cuda.is_available(), apex_available()):
        from apex.normalization import FusedRMSNorm

        _log_choice("apex.normalization.FusedRMSNorm")
        return FusedRMSNorm(dim, eps=eps)
    _log_choice("torch.nn.RMSNorm")
    return nn.RMSNorm(dim, eps=eps)
