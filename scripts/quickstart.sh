#!/usr/bin/env bash
# The README's main command. On a fresh machine: create or reuse .venv, prepare the bundled Ding de->en corpus
# (joint sentencepiece + fairseq-preprocess), train a small GMLM on the CPU within a time budget, translate the
# test set with fairseq-generate --iter-decode-max-iter 4, and print sacreBLEU and chrF with their signatures.
#
#   bash scripts/quickstart.sh                 # defaults below
#   TRAIN_MINUTES=60 bash scripts/quickstart.sh
#
# Re-running reuses the prepared data; delete $WORK/checkpoints to train again.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup_env.sh

WORK="${WORK:-work/quickstart}"
TRAIN_MINUTES="${TRAIN_MINUTES:-25}"
ARCH="${ARCH:-gmlm_t5_mini}"
THREADS="${THREADS:-$(nproc)}"
export OMP_NUM_THREADS="$THREADS"
mkdir -p "$WORK"

echo "== 1/4 prepare data/ding-de-en -> $WORK/data"
python scripts/prepare_data.py --raw data/ding-de-en --src de --tgt en --out "$WORK/data" --vocab-size 3000

echo "== 2/4 train $ARCH on the CPU for at most $TRAIN_MINUTES minutes (best checkpoint by valid BLEU)"
start=$(date +%s)
fairseq-train "$WORK/data/bin" --user-dir fairseq_gmlm --task translation_gmlm --arch "$ARCH" \
  --criterion gmlm_loss --label-smoothing 0.1 --dropout 0.3 \
  --optimizer adam --adam-betas '(0.9, 0.98)' --lr 1e-3 --lr-scheduler inverse_sqrt --warmup-updates 500 \
  --clip-norm 1.0 --max-tokens 4096 --max-epoch 200 --stop-time-hours "$(python -c "print($TRAIN_MINUTES / 60)")" \
  --eval-bleu --eval-bleu-args '{"iter_decode_max_iter": 4, "max_len_a": 1.5, "max_len_b": 10}' \
  --eval-bleu-remove-bpe sentencepiece --best-checkpoint-metric bleu --maximize-best-checkpoint-metric \
  --validate-interval 2 --no-epoch-checkpoints --save-dir "$WORK/checkpoints" --cpu --num-workers 0 \
  --no-progress-bar --log-interval 50 --seed 1 2>&1 | tee "$WORK/train.log" | grep -E "valid on|done training"
train_seconds=$(( $(date +%s) - start ))

echo "== 3/4 translate the test set: fairseq-generate --iter-decode-max-iter 4"
start=$(date +%s)
fairseq-generate "$WORK/data/bin" --user-dir fairseq_gmlm --task translation_gmlm \
  --path "$WORK/checkpoints/checkpoint_best.pt" --gen-subset test --iter-decode-max-iter 4 \
  --max-len-a 1.5 --max-len-b 10 --batch-size 100 --remove-bpe sentencepiece --cpu --print-step \
  > "$WORK/generate.test.txt" 2> "$WORK/generate.log"
generate_seconds=$(( $(date +%s) - start ))
grep '^D-' "$WORK/generate.test.txt" | sort -t- -k2 -n | cut -f3 > "$WORK/test.hyp.en"
lines=$(wc -l < "$WORK/test.hyp.en")
[ "$lines" -eq "$(wc -l < data/ding-de-en/test.en)" ] || { echo "expected one translation per test line, got $lines" >&2; exit 1; }

echo "== 4/4 score detokenized output against data/ding-de-en/test.en"
sacrebleu data/ding-de-en/test.en -i "$WORK/test.hyp.en" -m bleu chrf -b -w 2 > "$WORK/scores.txt"
sacrebleu data/ding-de-en/test.en -i "$WORK/test.hyp.en" -m bleu chrf -w 2 --format text | tee -a "$WORK/scores.txt"
passes=$(grep '^I-' "$WORK/generate.test.txt" | awk -F'\t' '{s += $2} END {printf "%.2f", s / NR}')
echo "train wall time: ${train_seconds}s; generate wall time (1000 sentences, incl. loading): ${generate_seconds}s; mean decoder passes: $passes"
