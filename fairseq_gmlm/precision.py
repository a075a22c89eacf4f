"""Mixed precision for training and generation: which dtype the weights take and which the forward autocasts to.

Training: fairseq converts the model for ``--fp16``/``--bf16`` and wraps the optimiser for ``--amp``; the task
autocasts each step's forward accordingly. Generation: fairseq-generate and fairseq-interactive convert the
model only for ``--fp16`` and ignore ``--bf16`` and ``--amp``, but both hand the whole config to the model's
``prepare_for_inference_``, where :func:`generation_precision` decides the rest. Autocasting keeps softmax,
norms and losses in float32 while matrix products run in the half dtype.
"""

import logging
from typing import NamedTuple, Optional

import torch
from fairseq.optim.amp_optimizer import AMPOptimizer

logger = logging.getLogger(__name__)


class Precision(NamedTuple):
    weights: Optional[torch.dtype]  # convert the parameters to this dtype (None: leave them as they are)
    autocast: Optional[torch.dtype]  # autocast the forward to this dtype (None: full precision)


def amp_dtype(device_type: str) -> torch.dtype:
    """--amp: float16 on CUDA, bfloat16 elsewhere (CPU autocast does not support float16 well)."""
    return torch.float16 if device_type == "cuda" else torch.bfloat16


def cpu_has_native_bfloat16() -> bool:
    """Whether this CPU multiplies bfloat16 natively (AVX512-BF16 or AMX), where ``--amp`` trains 1.4-1.5 times as fast
    per update (docs/training.md, "bfloat16 autocast on the CPU"). oneDNN's own query
    (``torch.ops.mkldnn._is_mkldnn_bf16_supported``) also says yes on a plain AVX-512 CPU, which only emulates
    bfloat16: there ``--amp`` makes 2.2-2.3 times fewer updates than float32 (docs/training.md, "A CPU that emulates
    bfloat16")."""
    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except AttributeError:  # a torch without the queries
        return False


def generation_precision(fp16: bool, bf16: bool, amp: bool, device_type: str) -> Precision:
    """What generation does under fairseq's precision flags (fairseq itself has already applied --fp16's .half())."""
    if bf16:
        return Precision(weights=torch.bfloat16, autocast=torch.bfloat16)
    if fp16:
        return Precision(weights=torch.float16, autocast=torch.float16)
    if amp:
        return Precision(weights=None, autocast=amp_dtype(device_type))
    return Precision(weights=None, autocast=None)


def prepare_generation_precision(model: torch.nn.Module, common) -> None:
    """Apply COMMON's (cfg.common) --fp16/--bf16/--amp to MODEL for generation; remembered for autocast_for."""
    device_type = next(model.parameters()).device.type
    precision = generation_precision(bool(common.fp16), bool(common.bf16), bool(common.amp), device_type)
    if precision.weights is not None:
        model.to(precision.weights)
    model.generation_autocast = precision.autocast
    if precision.autocast is not None:
        logger.info("generation on %s: %s weights, forward autocast to %s", device_type,
                    next(model.parameters()).dtype, precision.autocast)


def autocast_for(model: torch.nn.Module, optimizer=None):
    """The autocast context of MODEL's forward: --amp training (OPTIMIZER is fairseq's AMPOptimizer), half-precision
    weights (--fp16/--bf16), or what prepare_generation_precision chose; disabled in full precision."""
    device_type = next(model.parameters()).device.type
    param_dtype = next(model.parameters()).dtype
    if isinstance(optimizer, AMPOptimizer):
        dtype = amp_dtype(device_type)
    elif param_dtype in (torch.float16, torch.bfloat16):
        dtype = param_dtype
    else:
        dtype = getattr(model, "generation_autocast", None)
    if dtype is None:
        return torch.autocast(device_type, enabled=False)
    return torch.autocast(device_type, dtype=dtype)
