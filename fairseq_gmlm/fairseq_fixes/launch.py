"""Two corrections to how fairseq 0.12.3 (``ve-fairseq``) starts a run, applied where every fairseq tool
starts one.

``--bf16`` on CPUs and GPUs (defect 6 in docs/fairseq-fixes.md): fairseq reads ``--bf16`` as "bfloat16 on a TPU"
(``parse_args_and_arch`` sets ``--tpu`` with it) and the trainer then asks torch_xla for a device (``'NoneType'
object has no attribute 'xla_device'`` without torch_xla). Where torch_xla is not importable no TPU can be meant,
so the implied ``--tpu`` is dropped: the model trains in bfloat16 on the CPU or GPU, with fairseq's float32 master
weights.

``torchrun`` (defect 7): fairseq looks at torchrun's environment (``WORLD_SIZE``, ``RANK``, ...) only when
``--distributed-world-size`` is above 1, whose default is the number of GPUs. On a CPU-only machine each torchrun
worker therefore trained its own copy with world size 1 (and all wrote the same checkpoints); given
``--distributed-world-size`` it divided by ``torch.cuda.device_count()`` (zero). Under torchrun the process group
is now taken from the environment: world size, rank, and ``LOCAL_RANK`` as the device. On the CPU, fairseq's
default ``--ddp-backend pytorch_ddp`` hands ``device_ids=[rank]`` to torch's DistributedDataParallel, which torch
rejects for CPU modules; CPU runs use fairseq's own ``legacy_ddp`` instead (same all-reduced gradients).

Both are applied by wrapping ``fairseq.distributed.utils.call_main``, which fairseq-train, fairseq-interactive
and the other tools call right after parsing the command line (after this plugin is imported).
"""

import functools
import importlib.util
import logging
import os
from typing import Mapping, Optional

import torch

logger = logging.getLogger(__name__)

TORCHRUN_VARIABLES = ("MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "RANK", "LOCAL_RANK")
CPU_INCAPABLE_DDP_BACKENDS = ("c10d", "pytorch_ddp")


def tpu_only_implied_by_bf16(bf16: bool, tpu: bool, xla_importable: bool) -> bool:
    """Whether ``--tpu`` is set although no TPU can be meant."""
    return bf16 and tpu and not xla_importable


def torchrun_process_group(environment: Mapping[str, str], init_method: Optional[str]) -> Optional[dict]:
    """fairseq's distributed settings for a torchrun worker, or None when not under torchrun (or the user
    already chose an init method, or there is one worker)."""
    if init_method is not None or not all(name in environment for name in TORCHRUN_VARIABLES):
        return None
    world_size = int(environment["WORLD_SIZE"])
    if world_size < 2:
        return None
    return {
        "distributed_init_method": "env://", "distributed_world_size": world_size,
        "distributed_rank": int(environment["RANK"]), "device_id": int(environment["LOCAL_RANK"]),
        "distributed_no_spawn": True,
    }


def apply_launch_fixes(cfg) -> None:
    common, distributed = cfg.common, cfg.distributed_training
    if tpu_only_implied_by_bf16(common.bf16, common.tpu, importlib.util.find_spec("torch_xla") is not None):
        logger.info("--bf16 without torch_xla: training in bfloat16 on the %s, not on a TPU",
                    "CPU" if common.cpu or not torch.cuda.is_available() else "GPU")
        common.tpu = False
        if getattr(distributed, "tpu", False):  # a copy of the flag, read by DistributedFairseqModel
            distributed.tpu = False
    group = torchrun_process_group(os.environ, distributed.distributed_init_method)
    if group is not None:
        for name, value in group.items():
            setattr(distributed, name, value)
        on_cpu = common.cpu or not torch.cuda.is_available()
        if on_cpu and str(distributed.ddp_backend) in CPU_INCAPABLE_DDP_BACKENDS:
            logger.warning("--ddp-backend %s cannot wrap a CPU model with torch %s: using legacy_ddp",
                           distributed.ddp_backend, torch.__version__)
            distributed.ddp_backend = "legacy_ddp"


def install_launch_fixes() -> None:
    """Defects 6 and 7: apply ``apply_launch_fixes`` to the config of every run. Idempotent."""
    from fairseq.distributed import utils as distributed_utils

    call_main = distributed_utils.call_main
    if getattr(call_main, "fairseq_gmlm", False):
        return

    @functools.wraps(call_main)
    def call_main_with_fixes(cfg, main, **kwargs):
        apply_launch_fixes(cfg)
        return call_main(cfg, main, **kwargs)

    call_main_with_fixes.fairseq_gmlm = True
    distributed_utils.call_main = call_main_with_fixes
