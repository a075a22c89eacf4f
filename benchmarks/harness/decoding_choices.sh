#!/usr/bin/env bash
# The decoding comparisons of docs/decoding.md ("Measured choices"), from the repository root, after
# python -m benchmarks.harness.ablate (work/ablate) and scripts/quickstart.sh (work/quickstart). work/longer/gmlm is
# the ablation's base variant trained on to 40 minutes: its fairseq-train command
# (work/ablate/models/base/command.txt) resumed from its checkpoint_last.pt with --stop-time-hours 0.6667
# --save-dir work/longer/gmlm.
set -euo pipefail
SETS=("mode=--length-choice mode" "mean=--length-choice mean" "mean_off3=--length-choice mean --length-offsets 3"
      "mode_len3=--iter-decode-with-beam 3" "mean_len3=--length-choice mean --iter-decode-with-beam 3"
      "mode_len3_sum=--iter-decode-with-beam 3 --candidate-score sum"
      "stop_prediction=--stop-rule prediction" "stop_prediction_mean=--stop-rule prediction --length-choice mean"
      "p10_mean=--iter-decode-max-iter 9 --length-choice mean"
      "confidence0.5_mean=--iter-decode-max-iter 9 --rejecter confidence --reject-threshold 0.5 --length-choice mean"
      "confidence0.9_mean=--iter-decode-max-iter 9 --rejecter confidence --reject-threshold 0.9 --length-choice mean")
run() {  # name data checkpoint subset reference
  python -m fairseq_gmlm.cli.sweep --data "$2" --path "$3" --subset "$4" --reference "$5" --max-iter 4 \
      --batch-size 64 --out "work/decoding-compare/$1.md" --compare "${SETS[@]}"
}
run base.lohelp work/ablate/data/bin work/ablate/models/base/final.pt valid2 work/ablate/data/raw/valid.lohelp-de-en.en
run base.ding work/ablate/data/bin work/ablate/models/base/final.pt valid1 work/ablate/data/raw/valid.ding-de-en.en
run longer.lohelp work/ablate/data/bin work/longer/gmlm/checkpoint_last.pt valid2 work/ablate/data/raw/valid.lohelp-de-en.en
run quickstart.lohelp work/quickstart/data/bin work/quickstart/gmlm/checkpoint_last.pt valid2 work/quickstart/data/raw/valid.lohelp-de-en.en
run quickstart.ding work/quickstart/data/bin work/quickstart/gmlm/checkpoint_last.pt valid1 work/quickstart/data/raw/valid.ding-de-en.en
# the linear schedule at the confidence rejecter's mean passes
python -m fairseq_gmlm.cli.sweep --data work/ablate/data/bin --path work/longer/gmlm/checkpoint_last.pt --subset valid2 \
    --reference work/ablate/data/raw/valid.lohelp-de-en.en --max-iter 4 --batch-size 64 --out work/decoding-compare/longer.equal-passes.md \
    --compare "p6_mean=--iter-decode-max-iter 5 --length-choice mean" "p7_mean=--iter-decode-max-iter 6 --length-choice mean"
python -m fairseq_gmlm.cli.sweep --data work/ablate/data/bin --path work/ablate/models/base/final.pt --subset valid2 \
    --reference work/ablate/data/raw/valid.lohelp-de-en.en --max-iter 4 --batch-size 64 --out work/decoding-compare/base.equal-passes.md \
    --compare "p8_mean=--iter-decode-max-iter 7 --length-choice mean" "p9_mean=--iter-decode-max-iter 8 --length-choice mean"
