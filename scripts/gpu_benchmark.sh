#!/usr/bin/env bash
# The GPU variant of the benchmark, in one go on a CUDA machine (docs/benchmark.md, "The GPU variant"):
#   1. the data (python -m benchmarks.harness.run --prepare-only);
#   2. beside step 3, a few --fp16 updates of gmlm_t5_small started through fairseq's distributed launch with the
#      NCCL backend: its log says which fused kernels ran ("fairseq_gmlm kernels: ...", Apex or torch's own);
#   3. python -m benchmarks.harness.run --gpu: every system at gmlm_t5_small for a minute or two, scored in
#      float32, timed in bfloat16 at batch 1 and batch 128; the report goes to benchmarks/gpu/.
# WORK (default work/gpu) holds the data, models and logs. BENCH_TIMEOUT (seconds, default none) bounds step 3,
# so that a lent machine's time limit still leaves the logs of a run cut short. Extra arguments go to step 3.
set -uo pipefail
cd "$(dirname "$0")/.."
WORK=${WORK:-work/gpu}
mkdir -p "$WORK"
python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device: this is the GPU variant; on the CPU run python -m benchmarks.harness.run')" || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$WORK/gpu.csv" 2>&1

python -m benchmarks.harness.run --work "$WORK" --gpu --prepare-only || exit 1

# fairseq starts its distributed path (distributed_init: NCCL process group, a first all-reduce) when given an init
# method; on one GPU that is a group of one.
timeout 300 fairseq-train "$WORK/data/bin" --user-dir fairseq_gmlm --task translation_gmlm --arch gmlm_t5_small \
    --criterion gmlm_loss --optimizer adamw_fused --lr 5e-4 --lr-scheduler inverse_sqrt --warmup-updates 10 \
    --max-tokens 4096 --max-update 30 --fp16 --no-save --disable-validation --log-format simple --log-interval 10 \
    --distributed-backend nccl --distributed-world-size 1 --distributed-init-method tcp://127.0.0.1:29517 \
    --seed 1 --num-workers 0 > "$WORK/fp16-nccl.log" 2>&1 &
fp16_job=$!

bench_status=0
${BENCH_TIMEOUT:+timeout "$BENCH_TIMEOUT"} python -m benchmarks.harness.run --work "$WORK" --gpu "$@" \
    2>&1 | tee "$WORK/benchmark.log" || bench_status=$?

wait "$fp16_job"
fp16_status=$?
{
    echo "fp16 training through fairseq's distributed (NCCL) start: exit status $fp16_status"
    python -c "import importlib.util, torch; print('torch', torch.__version__, 'CUDA', torch.version.cuda, 'NCCL',
'.'.join(map(str, torch.cuda.nccl.version())), 'Apex importable:', importlib.util.find_spec('apex') is not None)"
    grep -E "kernels|distributed init|initialized host|NCCL|fp16|loss_scale|num_updates|Error|error" "$WORK/fp16-nccl.log" \
        | grep -v "^\s*$" | grep -v "fairseq_cli.train | {" | tail -40  # not the configuration's dump
} > "$WORK/fp16-nccl.summary.txt"
cat "$WORK/fp16-nccl.summary.txt"
exit "$bench_status"
