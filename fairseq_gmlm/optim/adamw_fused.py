"""``--optimizer adamw_fused``: AdamW with a fused kernel on every device.

On CUDA with NVIDIA Apex importable this is Apex's ``FusedAdam`` in AdamW mode (decoupled weight decay);
otherwise ``torch.optim.AdamW(fused=True)``, which torch provides for CUDA and for the CPU. fairseq's own
``--optimizer adam`` is also AdamW (decoupled decay) but steps in Python on the CPU; the numbers agree with
``torch.optim.AdamW(fused=False)`` up to rounding (``tests/test_scale.py`` compares fused and plain).

Under ``--fp16``/``--bf16`` fairseq keeps float32 master weights and steps them with this optimizer, so both
kernels always see float32 parameters and gradients.
"""

import logging
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any, List

import torch
from fairseq.dataclass import FairseqDataclass
from fairseq.optim import FairseqOptimizer, register_optimizer
from omegaconf import II, OmegaConf

from fairseq_gmlm import kernels
from fairseq_gmlm.errors import UsageError

logger = logging.getLogger(__name__)


@dataclass
class AdamWFusedConfig(FairseqDataclass):
    adam_betas: Any = field(default=(0.9, 0.999), metadata={"help": "betas for AdamW, e.g. '(0.9, 0.98)'"})
    adam_eps: float = field(default=1e-8, metadata={"help": "epsilon for AdamW"})
    weight_decay: float = field(default=0.0, metadata={"help": "decoupled weight decay"})
    lr: List[float] = II("optimization.lr")


def parse_betas(betas) -> tuple:
    """``--adam-betas`` arrives as a string from the command line and as a list from a config."""
    if isinstance(betas, str):
        values = tuple(float(v) for v in betas.strip("()[] ").split(",") if v.strip())
    else:
        values = tuple(float(v) for v in (OmegaConf.to_container(betas) if OmegaConf.is_config(betas) else betas))
    if len(values) != 2 or not all(0.0 <= v < 1.0 for v in values):
        raise UsageError(f"--adam-betas must be two numbers in [0, 1), e.g. '(0.9, 0.98)', got {betas!r}")
    return values


def build_adamw(params, use_apex: bool, **config) -> torch.optim.Optimizer:
    """The fused AdamW chosen by ``use_apex`` (see ``kernels.use_apex``), with torch's AdamW keyword names."""
    if use_apex:
        from apex.optimizers import FusedAdam

        kernels.log_choice("AdamW", "apex.optimizers.FusedAdam")
        return FusedAdam(params, adam_w_mode=True, **config)
    kernels.log_choice("AdamW", "torch.optim.AdamW(fused=True)")
    return torch.optim.AdamW(params, fused=True, **config)


@register_optimizer("adamw_fused", dataclass=AdamWFusedConfig)
class AdamWFused(FairseqOptimizer):
    def __init__(self, cfg: AdamWFusedConfig, params):
        super().__init__(cfg)
        params = list(params)
        on_cuda = any(p.is_cuda for p in params)
        self._optimizer = build_adamw(params, kernels.use_apex(on_cuda, kernels.apex_optimizers_available()),
                                      **self.optimizer_config)

    @property
    def optimizer_config(self):
        """What a resumed run takes from the command line rather than from the checkpoint."""
        lr = self.cfg.lr[0] if isinstance(self.cfg.lr, Collection) else self.cfg.lr
        return {
            "lr": lr, "betas": parse_betas(self.cfg.adam_betas), "eps": self.cfg.adam_eps,
            "weight_decay": self.cfg.weight_decay,
        }

    @property
    def supports_flat_params(self):
        return True
