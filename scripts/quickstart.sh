#!/usr/bin/env bash
# The README's main command. On a fresh machine: create or reuse .venv, prepare the two bundled German->English
# corpora (Ding sentences + LibreOffice help: joint sentencepiece, fairseq-preprocess, each test set apart),
# train the autoregressive t5_ar, warm-start the GMLM from it and fine-tune it (the recipe of ablations/RESULTS.md),
# translate both test sets with fairseq-generate --iter-decode-max-iter 4 and the recipe's decoding (DECODE), print sacreBLEU and chrF with their
# signatures and five test sentences with source, reference and translation.
#
#   bash scripts/quickstart.sh                          # about 30 minutes on 2 CPU cores
#   AR_MINUTES=30 GMLM_MINUTES=30 bash scripts/quickstart.sh
#
# Re-running reuses the prepared data and finished models; delete $WORK/ar or $WORK/gmlm to train again.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup_env.sh

WORK="${WORK:-work/quickstart}"
# Most of the minutes go to the fine-tune: on raw targets a short teacher is enough (docs/training.md, "Where the
# benchmark's 38 minutes go"); here 5 + 20 beat 13 + 12 on both test sets (docs/measured.md, "Quickstart").
AR_MINUTES="${AR_MINUTES:-5}"
GMLM_MINUTES="${GMLM_MINUTES:-20}"
SIZE="${SIZE:-mini}"  # gmlm_t5_mini / t5_ar_mini: d_model 128, 3+3 layers
THREADS="${THREADS:-$(nproc)}"
# The recipe (ablations/RESULTS.md, docs/training.md): warm start from t5_ar, learned decoder positions; no dropout
# for either model, and for the fine-tune a masking ratio from U(0.5, 1) and a peak learning rate of 2e-3
# (measured 2026-12-02: at this budget dropout 0.1 costs both models BLEU).
RECIPE=(--position-input "${POSITION_INPUT:-learned}" --mask-ratio 0.5:1 --lr 2e-3)
# The recipe's decoding: five lengths around the mean predicted one (docs/training.md, "The length beam" and "118
# minutes"), with the generator's default stutter rule (--stutter-remask first: the less confident of two neighbouring
# copies of a word takes its next best word and is re-masked first). On this quickstart's model of 2026-12-06 it
# scored 21.05 BLEU on LibreOffice-help test against 19.78 for the generator's defaults and 20.73 with PaDIR's
# --stutter-remask on, Ding 2.83 against 2.77 and 3.09, chrF ahead of both on both (docs/measured.md, "Quickstart").
# Drop DECODE's flags for the generator's defaults.
DECODE=(--length-offsets 5 --length-choice mean)
# Both models train under --amp (bfloat16 autocast) where the CPU multiplies bfloat16 natively (AVX512-BF16 or AMX;
# on AVX-512 alone it is emulated and --amp made 2.2x fewer updates, so float32 there): 1.4-1.5 times the
# updates per minute at one thread (docs/training.md, "bfloat16 autocast on the CPU"), 1.2 here at two; on
# 2026-12-06 23.11 BLEU on LibreOffice-help test against 21.05 in float32 (docs/measured.md, "Quickstart").
# AMP=1 or AMP=0 decides instead.
if [ "${AMP:-auto}" = auto ]; then
  AMP=$(python -c "from fairseq_gmlm.precision import cpu_has_native_bfloat16 as native; print(int(native()))")
fi
PRECISION=(); if [ "$AMP" = 1 ]; then PRECISION=(--amp); fi
export OMP_NUM_THREADS="$THREADS"
mkdir -p "$WORK"
DATA="$WORK/data"
# The peak learning rate is each model's own (--lr), so that every flag appears once in a command.
COMMON=(--user-dir fairseq_gmlm --optimizer adam --adam-betas '(0.9, 0.98)' --lr-scheduler inverse_sqrt
        --warmup-updates 200 --clip-norm 1.0 --weight-decay 0.0001 --dropout 0 --label-smoothing 0.1
        --max-tokens 4096 --max-epoch 10000 --max-source-positions 256 --max-target-positions 256
        --no-epoch-checkpoints --ignore-unused-valid-subsets --cpu --num-workers 0 --seed 1
        --no-progress-bar --log-format simple --log-interval 100 "${PRECISION[@]}")

# train NAME MINUTES ARGS...: fairseq-train into $WORK/NAME, one progress line per epoch with the time left
train() {
  local name="$1" minutes="$2"; shift 2
  if [ -f "$WORK/$name/done" ]; then echo "   (reusing $WORK/$name)"; return; fi
  local start; start=$(date +%s)
  fairseq-train "$DATA/bin" "${COMMON[@]}" --stop-time-hours "$(python -c "print($minutes / 60)")" \
    --save-dir "$WORK/$name" "$@" 2>&1 | tee "$WORK/$name.log" |
    grep --line-buffered -E "\| valid on|done training" |
    while IFS= read -r line; do
      elapsed=$(( $(date +%s) - start ))
      summary=$(echo "$line" | grep -oE "epoch [0-9]+|nll_loss [0-9.]+|num_updates [0-9]+|done training.*" | paste -sd' ')
      left=$(awk -v m="$minutes" -v e="$elapsed" 'BEGIN { l = m - e / 60; printf "%.0f", (l > 0 ? l : 0) }')
      printf "   [%s %2dm%02ds elapsed, ~%sm left] %s\n" "$name" $((elapsed / 60)) $((elapsed % 60)) "$left" "$summary"
    done
  touch "$WORK/$name/done"
}

echo "== 1/5 prepare data/ding-de-en + data/lohelp-de-en -> $DATA"
python -m fairseq_gmlm.cli.prepare_data --raw data/ding-de-en data/lohelp-de-en --src de --tgt en --out "$DATA" \
  --vocab-size 3000 \
  > "$WORK/prepare.log" 2>&1 || { tail -20 "$WORK/prepare.log"; exit 1; }

echo "== 2/5 train the autoregressive t5_ar_$SIZE for $AR_MINUTES minutes (the GMLM's warm start)"
train ar "$AR_MINUTES" --task translation --arch "t5_ar_$SIZE" --criterion label_smoothed_cross_entropy --lr 1e-3 \
  --relative-attention-init diverse

echo "== 3/5 warm-start gmlm_t5_$SIZE from it and fine-tune for $GMLM_MINUTES minutes"
train gmlm "$GMLM_MINUTES" --task translation_gmlm --arch "gmlm_t5_$SIZE" --criterion gmlm_loss \
  --init-from-ar "$WORK/ar/checkpoint_last.pt" "${RECIPE[@]}"

echo "== 4/5 translate both test sets: fairseq-generate --iter-decode-max-iter 4 ${DECODE[*]}"
for corpus in ding-de-en lohelp-de-en; do
  subset=$(python -c "import json; print(json.load(open('$DATA/corpora.json'))['tests']['$corpus']['subset'])")
  start=$(date +%s)
  fairseq-generate "$DATA/bin" --user-dir fairseq_gmlm --task translation_gmlm --path "$WORK/gmlm/checkpoint_last.pt" \
    --gen-subset "$subset" --iter-decode-max-iter 4 "${DECODE[@]}" --max-len-a 1.5 --max-len-b 10 --batch-size 100 \
    --remove-bpe sentencepiece --cpu --print-step > "$WORK/generate.$corpus.txt" 2> "$WORK/generate.$corpus.log"
  seconds=$(( $(date +%s) - start ))
  grep '^D-' "$WORK/generate.$corpus.txt" | sort -t- -k2 -n | cut -f3 > "$WORK/test.$corpus.hyp.en"
  lines=$(wc -l < "$WORK/test.$corpus.hyp.en")
  [ "$lines" -eq "$(wc -l < "data/$corpus/test.en")" ] || { echo "expected one translation per test line, got $lines" >&2; exit 1; }
  passes=$(grep '^I-' "$WORK/generate.$corpus.txt" | awk -F'\t' '{s += $2} END {printf "%.2f", s / NR}')
  echo "   $corpus: $lines sentences in ${seconds}s (incl. loading), mean decoder passes $passes"
done

echo "== 5/5 score detokenized output against the references"
for corpus in ding-de-en lohelp-de-en; do
  echo "-- $corpus"
  sacrebleu "data/$corpus/test.en" -i "$WORK/test.$corpus.hyp.en" -m bleu chrf -w 2 --format text | tee "$WORK/scores.$corpus.txt"
done
echo "-- five test sentences (source / reference / GMLM)"
for line in 3 250 500; do
  printf "   DE:  %s\n   REF: %s\n   GMLM: %s\n\n" "$(sed -n "${line}p" data/ding-de-en/test.de)" \
    "$(sed -n "${line}p" data/ding-de-en/test.en)" "$(sed -n "${line}p" "$WORK/test.ding-de-en.hyp.en")"
done
for line in 10 600; do
  printf "   DE:  %s\n   REF: %s\n   GMLM: %s\n\n" "$(sed -n "${line}p" data/lohelp-de-en/test.de)" \
    "$(sed -n "${line}p" data/lohelp-de-en/test.en)" "$(sed -n "${line}p" "$WORK/test.lohelp-de-en.hyp.en")"
done
