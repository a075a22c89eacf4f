"""Scale: the fused-AdamW optimizer and kernel selection, bf16 training on the CPU, resuming after SIGKILL, and
two-process (gloo) training against one process."""

import importlib.util
import math
import os
import platform
import re
import signal
import subprocess
import sys
import types
from argparse import Namespace

import pytest
import torch
from omegaconf import OmegaConf

from test_gmlm_loss import make_sample

from conftest import BIN, PLUGIN, ROOT, build_from_flags, build_task_and_model, run_cli
from fairseq_gmlm import kernels
from fairseq_gmlm.optim.adamw_fused import AdamWFused, AdamWFusedConfig, build_adamw, parse_betas
from fairseq_gmlm.fairseq_fixes.launch import TORCHRUN_VARIABLES, apply_launch_fixes, torchrun_process_group
from fairseq_gmlm.models.t5_common import shifted_right
from fairseq_gmlm.precision import Precision, cpu_has_native_bfloat16, generation_precision


# ---- kernel selection ---------------------------------------------------------------------------------------

def fake_apex(monkeypatch):
    """Install stand-ins for apex.normalization.FusedRMSNorm and apex.optimizers.FusedAdam; returns them."""
    class FakeFusedRMSNorm(torch.nn.RMSNorm):
        pass

    class FakeFusedAdam(torch.optim.SGD):
        def __init__(self, params, adam_w_mode, lr, betas, eps, weight_decay):
            super().__init__(params, lr=lr)

    apex = types.ModuleType("apex")
    apex.normalization, apex.optimizers = types.ModuleType("apex.normalization"), types.ModuleType("apex.optimizers")
    apex.normalization.FusedRMSNorm, apex.optimizers.FusedAdam = FakeFusedRMSNorm, FakeFusedAdam
    for name, module in (("apex", apex), ("apex.normalization", apex.normalization),
                         ("apex.optimizers", apex.optimizers)):
        monkeypatch.setitem(sys.modules, name, module)
    return FakeFusedRMSNorm, FakeFusedAdam


@pytest.mark.parametrize("cuda, apex", [(True, False), (False, True), (False, False)])
def test_torch_kernels_are_used_unless_both_cuda_and_apex_are_there(monkeypatch, cuda, apex):
    fake_apex(monkeypatch)
    monkeypatch.setattr(kernels, "apex_available", lambda: apex)
    monkeypatch.setattr(kernels, "apex_optimizers_available", lambda: apex)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    assert type(kernels.make_rms_norm(8, 1e-6)) is torch.nn.RMSNorm
    cfg = OmegaConf.structured(AdamWFusedConfig(lr=[1e-3]))
    assert type(AdamWFused(cfg, [torch.nn.Parameter(torch.zeros(3))]).optimizer) is torch.optim.AdamW


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


def test_make_rms_norm_uses_torch_rmsnorm_without_cuda_and_apex_fused_rmsnorm_with_both(monkeypatch):
    assert type(kernels.make_rms_norm(8, 1e-6)) is torch.nn.RMSNorm

    class FakeFusedRMSNorm(torch.nn.RMSNorm):  # stands in for apex.normalization.FusedRMSNorm
        pass

    apex = types.ModuleType("apex")
    apex.normalization = types.ModuleType("apex.normalization")
    apex.normalization.FusedRMSNorm = FakeFusedRMSNorm
    monkeypatch.setitem(sys.modules, "apex", apex)
    monkeypatch.setitem(sys.modules, "apex.normalization", apex.normalization)
    monkeypatch.setattr(kernels, "apex_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert type(kernels.make_rms_norm(8, 1e-6)) is FakeFusedRMSNorm


@pytest.mark.parametrize("eps", [1e-6, 1e-2])
def test_make_rms_norm_normalises_like_t5_layer_norm_with_the_given_epsilon(eps):
    torch.manual_seed(0)
    norm = kernels.make_rms_norm(16, eps)
    torch.nn.init.normal_(norm.weight)
    x = torch.randn(3, 5, 16) * 0.05  # small: the epsilon matters
    t5 = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * norm.weight  # T5LayerNorm, in plain torch
    torch.testing.assert_close(norm(x), t5)


def test_kernel_choice_is_logged_once(caplog):
    with caplog.at_level("INFO", logger="fairseq_gmlm.kernels"):
        for _ in range(3):
            kernels.log_choice("TestKernel", "test implementation")
    assert [r.getMessage() for r in caplog.records] == ["fairseq_gmlm kernels: TestKernel via test implementation"]


def test_parse_betas_when_string_list_or_config():
    assert parse_betas("(0.9, 0.98)") == (0.9, 0.98)
    assert parse_betas([0.9, 0.999]) == (0.9, 0.999)
    assert parse_betas(OmegaConf.create({"b": [0.8, 0.9]}).b) == (0.8, 0.9)
    with pytest.raises(ValueError, match="--adam-betas"):
        parse_betas("(0.9)")


def adamw_trajectory(make_optimizer, steps: int = 5):
    torch.manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(7, 5)), torch.nn.Parameter(torch.randn(5))]
    optimizer = make_optimizer(params)
    generator = torch.Generator().manual_seed(1)
    for _ in range(steps):
        for p in params:
            p.grad = torch.randn(p.shape, generator=generator)
        optimizer.step()
    return [p.detach().clone() for p in params]


def test_adamw_fused_steps_like_plain_adamw_with_the_configured_lr_betas_eps_and_weight_decay():
    cfg = OmegaConf.structured(AdamWFusedConfig(adam_betas="(0.8, 0.9)", adam_eps=1e-3, weight_decay=0.3, lr=[2e-2]))
    ours = adamw_trajectory(lambda params: AdamWFused(cfg, params))
    reference = adamw_trajectory(lambda params: torch.optim.AdamW(params, lr=2e-2, betas=(0.8, 0.9), eps=1e-3,
                                                                  weight_decay=0.3, foreach=False))
    for fused, plain in zip(ours, reference):
        torch.testing.assert_close(fused, plain, rtol=1e-6, atol=1e-7)
    default_decay = adamw_trajectory(lambda params: torch.optim.AdamW(params, lr=2e-2, betas=(0.8, 0.9), eps=1e-3,
                                                                      foreach=False))
    assert not torch.allclose(ours[0], default_decay[0])  # the values chosen make a difference


def test_adamw_fused_optimizer_steps_with_the_config_values():
    cfg = OmegaConf.structured(AdamWFusedConfig(adam_betas="(0.9, 0.98)", weight_decay=0.01, lr=[5e-4]))
    param = torch.nn.Parameter(torch.ones(4))
    optimizer = AdamWFused(cfg, [param])
    assert optimizer.optimizer.defaults["fused"] is True
    assert optimizer.get_lr() == 5e-4 and optimizer.param_groups[0]["betas"] == (0.9, 0.98)
    param.grad = torch.ones(4)
    optimizer.step()
    assert torch.all(param < 1)


def launch_config(**common):
    return OmegaConf.create({
        "common": {"bf16": False, "tpu": False, "cpu": True, **common},
        "distributed_training": {"tpu": common.get("tpu", False), "distributed_init_method": None,
                                 "ddp_backend": "pytorch_ddp", "distributed_world_size": 1, "distributed_rank": 0,
                                 "device_id": 0, "distributed_no_spawn": False},
    })


@pytest.mark.parametrize("bf16, tpu, xla, tpu_after", [(True, True, False, False), (True, True, True, True),
                                                       (False, True, False, True), (False, False, False, False)])
def test_launch_fixes_drop_the_tpu_that_bf16_implies_only_without_torch_xla(monkeypatch, bf16, tpu, xla, tpu_after):
    for name in TORCHRUN_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object() if name == "torch_xla" and xla
                        else (None if name == "torch_xla" else find_spec(name, *a)))
    cfg = launch_config(bf16=bf16, tpu=tpu)
    apply_launch_fixes(cfg)
    assert cfg.common.tpu is tpu_after and cfg.distributed_training.tpu is tpu_after
    assert cfg.common.bf16 is bf16


def test_launch_fixes_take_the_process_group_from_torchrun_and_use_legacy_ddp_on_the_cpu(monkeypatch):
    environment = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500", "WORLD_SIZE": "2", "RANK": "1",
                   "LOCAL_RANK": "1"}
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    cfg = launch_config()
    apply_launch_fixes(cfg)
    distributed = cfg.distributed_training
    assert (distributed.distributed_init_method, distributed.distributed_world_size, distributed.distributed_rank,
            distributed.device_id, distributed.distributed_no_spawn) == ("env://", 2, 1, 1, True)
    assert distributed.ddp_backend == "legacy_ddp"


def test_torchrun_process_group_when_torchrun_environment_is_set():
    environment = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500", "WORLD_SIZE": "2", "RANK": "1",
                   "LOCAL_RANK": "1"}
    assert torchrun_process_group(environment, None) == {
        "distributed_init_method": "env://", "distributed_world_size": 2, "distributed_rank": 1, "device_id": 1,
        "distributed_no_spawn": True,
    }
    assert torchrun_process_group(environment, "tcp://host:1234") is None  # the user's own choice wins
    assert torchrun_process_group({**environment, "WORLD_SIZE": "1"}, None) is None
    assert torchrun_process_group({}, None) is None


# ---- through fairseq-train ---------------------------------------------------------------------------------

def train_command(data, save_dir, *extra):
    return [
        data, "--user-dir", PLUGIN, "--task", "translation_gmlm", "--arch", "gmlm_t5_tiny", "--criterion", "gmlm_loss",
        "--optimizer", "adamw_fused", "--max-tokens", "512", "--cpu", "--save-dir", save_dir, "--no-progress-bar",
        "--log-interval", "1", "--seed", "1", "--num-workers", "0", "--disable-validation", *extra,
    ]


def logged_updates(stdout: str) -> dict:
    """num_updates -> the key=value pairs of fairseq's ``train_inner`` lines."""
    updates = {}
    for line in stdout.splitlines():
        if "| train_inner |" in line:
            values = dict(pair.split("=", 1) for pair in re.findall(r"\w+=[^,\s]+", line))
            updates[int(values["num_updates"])] = values
    return updates


@pytest.mark.parametrize("flag, device, weights, autocast", [
    ("bf16", "cpu", torch.bfloat16, torch.bfloat16), ("bf16", "cuda", torch.bfloat16, torch.bfloat16),
    ("fp16", "cuda", torch.float16, torch.float16), ("amp", "cpu", None, torch.bfloat16),
    ("amp", "cuda", None, torch.float16), (None, "cpu", None, None),
])
def test_generation_precision_for_each_flag(flag, device, weights, autocast):
    flags = {name: name == flag for name in ("fp16", "bf16", "amp")}
    assert generation_precision(**flags, device_type=device) == Precision(weights, autocast)


@pytest.mark.parametrize("avx512_bf16, amx", [(False, False), (True, False), (False, True)])
def test_native_bfloat16_needs_bfloat16_instructions_not_avx512_alone(monkeypatch, avx512_bf16, amx):
    # oneDNN's own query says yes on every AVX-512 CPU, where bfloat16 is emulated and --amp trains slower
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    assert cpu_has_native_bfloat16() is (avx512_bf16 or amx)
    monkeypatch.delattr(torch.cpu, "_is_avx512_bf16_supported")
    assert cpu_has_native_bfloat16() is False  # a torch without the query: float32, never the emulated path


@pytest.mark.skipif(not os.path.exists("/proc/cpuinfo") or platform.machine() != "x86_64",
                    reason="the x86 CPU's flags are read from Linux's /proc/cpuinfo (other CPUs name no 'flags' line)")
def test_native_bfloat16_agrees_with_the_cpus_own_flags():
    with open("/proc/cpuinfo") as cpuinfo:
        flags = set(re.search(r"^flags\s*:(.*)$", cpuinfo.read(), re.M).group(1).split())
    assert cpu_has_native_bfloat16() is bool(flags & {"avx512_bf16", "amx_bf16"})


@pytest.mark.parametrize("flag, weights, activations", [("bf16", torch.bfloat16, torch.bfloat16),
                                                         ("amp", torch.float32, torch.bfloat16),
                                                         (None, torch.float32, torch.float32)])
def test_inference_runs_in_the_dtype_of_the_precision_flag(tmp_path, flag, weights, activations):
    task, model, cfg = build_task_and_model(tmp_path)
    model.eval()
    if flag:
        cfg.common[flag] = True
    model.prepare_for_inference_(cfg)  # what fairseq-generate and fairseq-interactive call with their config
    seen = []
    projection = next(module for module in model.decoder.modules() if isinstance(module, torch.nn.Linear))
    projection.register_forward_hook(lambda module, inputs, output: seen.append(output.dtype))  # norms stay float32
    sample = make_sample(task, [("w1 w2 w3", "w3"), ("w4 w5", "w5")])
    generator = task.build_generator([model], Namespace(iter_decode_max_iter=2, max_len_a=1.0, max_len_b=5))
    hypotheses = task.inference_step(generator, [model], sample)
    assert next(model.parameters()).dtype == weights
    assert seen and set(seen) == {activations}
    assert len(hypotheses) == 2 and all(torch.isfinite(h[0]["score"]) for h in hypotheses)


CMLM_TINY = ["--encoder-embed-dim", "16", "--encoder-ffn-embed-dim", "32", "--encoder-layers", "1",
             "--encoder-attention-heads", "2", "--decoder-embed-dim", "16", "--decoder-ffn-embed-dim", "32",
             "--decoder-layers", "1", "--decoder-attention-heads", "2", "--share-all-embeddings"]


@pytest.mark.parametrize("flags", [
    ["--task", "translation", "--arch", "t5_ar_tiny", "--criterion", "label_smoothed_cross_entropy"],
    ["--task", "translation_lev", "--noise", "random_mask", "--arch", "cmlm_transformer", *CMLM_TINY,
     "--criterion", "nat_loss"],
], ids=["translation", "translation_lev"])
def test_stock_task_train_step_autocasts_to_bfloat16_on_the_cpu_under_amp_only(tmp_path, flags):
    """Defect 12: fairseq's own train_steps (t5_ar's task, CMLM's) left the forward in float32 on the CPU."""
    from fairseq.optim.amp_optimizer import AMPOptimizer
    from fairseq.optim.sgd import SGD

    task, model, cfg = build_from_flags(tmp_path, flags)
    criterion = task.build_criterion(cfg.criterion)
    sample = make_sample(task, [("w1 w2 w3", "w3 w2 w1"), ("w4 w5", "w5 w4")])
    sample["net_input"]["prev_output_tokens"] = shifted_right(sample["target"], task.target_dictionary.eos(),
                                                              task.target_dictionary.pad())
    seen = []  # the dtype of every linear layer's output that runs as a module (fairseq's attention reads its weights)
    for module in model.decoder.modules():
        if isinstance(module, torch.nn.Linear):
            module.register_forward_hook(lambda module, inputs, output: seen.append(output.dtype))

    def sgd():
        return SGD(Namespace(lr=[0.1], momentum=0.0, weight_decay=0.0), list(model.parameters()))

    common = OmegaConf.create({"fp16_init_scale": 128, "amp_scale_window": None, "min_loss_scale": 1e-4})
    amp = AMPOptimizer(OmegaConf.create({"optimizer": None, "common": common}), list(model.parameters()), sgd())
    for optimizer, dtype in ((amp, torch.bfloat16), (sgd(), torch.float32)):
        seen.clear()
        loss, _, _ = task.train_step(sample, model, criterion, optimizer, update_num=0)
        assert set(seen) == {dtype} and loss.dtype == torch.float32 and torch.isfinite(loss)
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        assert grads and all(g.dtype == torch.float32 for g in grads) and sum(g.abs().sum() for g in grads) > 0
        model.zero_grad()


@pytest.mark.slow
def test_bf16_training_on_cpu_has_finite_falling_loss(ding_slice, tmp_path):
    data = ding_slice / "prepared" / "bin"
    result = run_cli("fairseq-train", *train_command(data, tmp_path, "--bf16", "--lr", "3e-3", "--max-update", "16",
                                                     "--no-save"))
    assert "training in bfloat16 on the CPU" in result.stdout + result.stderr
    losses = [float(values["loss"]) for _, values in sorted(logged_updates(result.stdout).items())]
    assert len(losses) == 16 and all(math.isfinite(loss) for loss in losses)
    assert sum(losses[-4:]) / 4 < sum(losses[:4]) / 4 - 0.5


@pytest.mark.slow
def test_resume_after_sigkill_continues_updates_and_lr(ding_slice, tmp_path):
    data = ding_slice / "prepared" / "bin"
    # inverse_sqrt warm-up: lr = 1e-3 * update / 100 for the first 100 updates, so it shows where training is.
    command = [str(BIN / "fairseq-train"), *map(str, train_command(
        data, tmp_path, "--lr", "1e-3", "--lr-scheduler", "inverse_sqrt", "--warmup-updates", "100",
        "--warmup-init-lr", "0", "--max-update", "30", "--save-interval-updates", "5", "--no-epoch-checkpoints",
    ))]
    environment = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=environment)
    try:
        for line in process.stdout:  # fairseq logs to stdout, one flushed line per record
            saved = re.search(r"Saved checkpoint .* \(epoch \d+ @ (\d+) updates", line)
            if saved and int(saved.group(1)) >= 10:
                break
        else:
            pytest.fail("fairseq-train ended before saving a checkpoint at 10 updates")
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()

    result = run_cli("fairseq-train", *command[1:], timeout=300)
    loaded = re.search(r"Loaded checkpoint \S*checkpoint_last\.pt \(epoch \d+ @ (\d+) updates\)", result.stdout)
    assert loaded, result.stdout[-3000:]
    resumed_from = int(loaded.group(1))
    assert resumed_from >= 10 and resumed_from % 5 == 0
    updates = logged_updates(result.stdout)
    assert min(updates) == resumed_from + 1 and max(updates) == 30
    for update, values in updates.items():
        assert float(values["lr"]) == pytest.approx(1e-3 * update / 100, rel=1e-3)
    for checkpoint in tmp_path.glob("*.pt"):  # every file left behind is whole
        torch.load(checkpoint, map_location="cpu", weights_only=False)
    assert not list(tmp_path.glob("*.tmp"))

    last = tmp_path / "checkpoint_last.pt"
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    result = run_cli("fairseq-train", *command[1:], check=False, timeout=300)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert f"cannot read checkpoint {last}" in result.stderr


@pytest.mark.slow
def test_two_gloo_processes_match_one_process_on_the_first_update(ding_slice, tmp_path):
    """Rank r takes batch r of each group; one process with --update-freq 2 accumulates the same two batches.
    The corruption is keyed by example id and update, and dropout is off, so both see identical numbers."""
    data = ding_slice / "prepared" / "bin"
    common = ["--lr", "1e-3", "--max-update", "1", "--dropout", "0"]
    single = run_cli("fairseq-train", *train_command(data, tmp_path / "one", *common, "--update-freq", "2"))
    double = run_cli("torchrun", "--standalone", "--nproc_per_node", "2", BIN / "fairseq-train",
                     *train_command(data, tmp_path / "two", *common, "--distributed-backend", "gloo"), timeout=300)
    first_single, first_double = logged_updates(single.stdout)[1], logged_updates(double.stdout + double.stderr)[1]
    for key in ("loss", "nll_loss", "length_loss", "gnorm", "wpb", "bsz"):
        assert first_single[key] == first_double[key], key
    one = torch.load(tmp_path / "one" / "checkpoint_last.pt", map_location="cpu", weights_only=False)["model"]
    two = torch.load(tmp_path / "two" / "checkpoint_last.pt", map_location="cpu", weights_only=False)["model"]
    for name in one:
        torch.testing.assert_close(one[name], two[name], rtol=1e-5, atol=1e-6)

    result = run_cli("fairseq-generate", data, "--user-dir", PLUGIN, "--task", "translation_gmlm", "--path",
                     tmp_path / "two" / "checkpoint_last.pt", "--cpu", "--iter-decode-max-iter", "2")
    assert sum(line.startswith("H-") for line in result.stdout.splitlines()) == 50
