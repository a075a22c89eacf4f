"""Scale: the fused-AdamW optimizer and kernel selection, bf16 training, two-process (gloo) training."""

import sys
import types

import pytest
import torch
from omegaconf import OmegaConf

from fairseq_gmlm import kernels
from fairseq_gmlm.optim.adamw_fused import AdamWFused, AdamWFusedConfig, build_adamw, parse_betas


# ---- kernel selection ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("cuda, apex, expected", [(True, True, True), (True, False, False), (False, True, False),
                                                  (False, False, False)])
def test_use_apex_only_when_cuda_and_apex(cuda, apex, expected):
    assert kernels.use_apex(cuda, apex) is expected


def test_build_adamw_uses_torch_fused_when_apex_not_chosen():
    param = torch.nn.Parameter(torch.zeros(3))
    optimizer = build_adamw([param], use_apex=False, lr=1e-3, betas=(0.9, 0.98), eps=1e-8, weight_decay=0.0)
    assert type(optimizer) is torch.optim.AdamW and optimizer.defaults["fused"] is True


def test_build_adamw_uses_apex_fused_adam_in_adamw_mode_when_chosen(monkeypatch):
    built = {}

    class FakeFusedAdam(torch.optim.SGD):  # stands in for apex.optimizers.FusedAdam on machines without Apex
        def __init__(self, params, adam_w_mode, lr, betas, eps, weight_decay):
            built.update(adam_w_mode=adam_w_mode, betas=betas)
            super().__init__(params, lr=lr)

    apex = types.ModuleType("apex")
    apex.optimizers = types.ModuleType("apex.optimizers")
    apex.optimizers.FusedAdam = FakeFusedAdam
    monkeypatch.setitem(sys.modules, "apex", apex)
    monkeypatch.setitem(sys.modules, "apex.optimizers", apex.optimizers)
    optimizer = build_adamw([torch.nn.Parameter(torch.zeros(3))], use_apex=True, lr=1e-3, betas=(0.9, 0.98),
                            eps=1e-8, weight_decay=0.0)
    assert isinstance(optimizer, FakeFusedAdam) and built == {"adam_w_mode": True, "betas": (0.9, 0.98)}


def test_parse_betas_when_string_list_or_config():
    assert parse_betas("(0.9, 0.98)") == (0.9, 0.98)
    assert parse_betas([0.9, 0.999]) == (0.9, 0.999)
    assert parse_betas(OmegaConf.create({"b": [0.8, 0.9]}).b) == (0.8, 0.9)
    with pytest.raises(ValueError, match="--adam-betas"):
        parse_betas("(0.9)")


def _adamw_trajectory(fused: bool, steps: int = 5):
    torch.manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(7, 5)), torch.nn.Parameter(torch.randn(5))]
    optimizer = torch.optim.AdamW(params, lr=1e-2, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.1,
                                  fused=fused, foreach=False if not fused else None)
    generator = torch.Generator().manual_seed(1)
    for _ in range(steps):
        for p in params:
            p.grad = torch.randn(p.shape, generator=generator)
        optimizer.step()
    return [p.detach().clone() for p in params]


def test_fused_adamw_matches_plain_adamw_on_cpu():
    for fused, plain in zip(_adamw_trajectory(fused=True), _adamw_trajectory(fused=False)):
        torch.testing.assert_close(fused, plain, rtol=1e-6, atol=1e-7)


def test_adamw_fused_optimizer_steps_with_the_config_values():
    cfg = OmegaConf.structured(AdamWFusedConfig(adam_betas="(0.9, 0.98)", weight_decay=0.01, lr=[5e-4]))
    param = torch.nn.Parameter(torch.ones(4))
    optimizer = AdamWFused(cfg, [param])
    assert optimizer.optimizer.defaults["fused"] is True
    assert optimizer.get_lr() == 5e-4 and optimizer.param_groups[0]["betas"] == (0.9, 0.98)
    param.grad = torch.ones(4)
    optimizer.step()
    assert torch.all(param < 1)
