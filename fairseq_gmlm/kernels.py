"""Choice between NVIDIA Apex fused kernels and torch's native ones.

Apex is optional (a source build; the PyPI package named ``apex`` is something else). Where it imports and CUDA
is available we use its ``FusedRMSNorm`` and (``--optimizer adamw_fused``) its ``FusedAdam``; otherwise
``torch.nn.RMSNorm`` and ``torch.optim.AdamW(fused=True)``. Both norms keep the scale in a parameter named
``weight``, so checkpoints move between the two unchanged. Each choice is logged once per process.
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


@functools.lru_cache(maxsize=None)
def apex_optimizers_available() -> bool:
    try:
        import apex.optimizers  # noqa: F401
    except Exception:
        return False
    return True


def use_apex(cuda_available: bool, apex_importable: bool) -> bool:
    """The selection rule, kept pure so both branches can be tested on any machine."""
    return cuda_available and apex_importable


@functools.lru_cache(maxsize=None)
def log_choice(kernel: str, implementation: str) -> None:
    logger.info("fairseq_gmlm kernels: %s via %s", kernel, implementation)


def make_rms_norm(dim: int, eps: float) -> nn.Module:
    if use_apex(torch.cuda.is_available(), apex_available()):
        from apex.normalization import FusedRMSNorm

        log_choice("RMSNorm", "apex.normalization.FusedRMSNorm")
        return FusedRMSNorm(dim, eps=eps)
    log_choice("RMSNorm", "torch.nn.RMSNorm")
    return nn.RMSNorm(dim, eps=eps)
