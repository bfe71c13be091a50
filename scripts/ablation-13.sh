#!/usr/bin/env bash
# Issue #13 follow-ups on a finished `stepwise run examples/replay.yaml --out RUN --seeds 2 --threads 1`, one seed at
# a time, with the knobs of the run's step-dpo stage (beta 1, lr 5e-5, 2 epochs, batch 32, max length 512):
#   1. SFT replay weight: Step-DPO with the outcome pairs' chosen sides replayed at weight 10, 30 and 100;
#   2. Step-DPO from the sft-more model (policy and reference) on the SFT model's step pairs (off-policy);
#   3. Step-DPO from the sft-more model on step pairs sampled from it (on-policy: sample, verify, pairs as the run).
# Each model is evaluated greedily on the run's held-out problems; the accuracies are printed at the end.
#   scripts/ablation-13.sh runs/replay 1
set -euo pipefail
RUN=$1
S=$2
R=$RUN/seed-$S
O=$RUN/ablation-13/seed-$S
mkdir -p "$O"
sw() { node bin/stepwise.js "$@"; }
dpo_knobs=(--beta 1 --lr 5e-5 --epochs 2 --batch-size 32 --seed "$S" --max-length 512 --threads 1)
results=()
evaluate() {
  sw eval --model "$1" --problems "$RUN/data/test.jsonl" --task arith --max-tokens 160 --seed "$S" --threads 1 \
    --json >"$O/$2.eval.json"
  results+=("$2 (seed $S): $(node -e "console.log((100 * require('./$O/$2.eval.json').accuracy).toFixed(1))")%")
}
evaluate "$R/step-dpo" step-dpo # the run's own step-dpo model: this evaluation must give the run's number
for w in 10 30 100; do
  [ -f "$O/replay-w$w/model.safetensors" ] || sw dpo --model "$R/sft" --pairs "$R/pairs/stepdpo.jsonl" \
    --replay "$R/pairs/replay-step-dpo-replay-chosen.jsonl" --replay-weight "$w" "${dpo_knobs[@]}" --out "$O/replay-w$w"
  evaluate "$O/replay-w$w" "step-dpo-replay-w$w"
done
[ -f "$O/after-sft-more/model.safetensors" ] || sw dpo --model "$R/sft-more" --pairs "$R/pairs/stepdpo.jsonl" \
  "${dpo_knobs[@]}" --out "$O/after-sft-more"
evaluate "$O/after-sft-more" step-dpo-after-sft-more
P=$O/onpolicy
mkdir -p "$P"
sw sample --model "$R/sft-more" --problems "$RUN/data/sample.jsonl" --n 8 --temperature 1 --max-tokens 160 \
  --seed "$S" --threads 1 --out "$P/samples.jsonl"
sw verify --task arith --in "$P/samples.jsonl" --out "$P/verified.jsonl"
sw pairs --kind stepdpo --task arith --in "$P/verified.jsonl" --out "$P/stepdpo.jsonl" --max-pairs-per-problem 4 \
  --chosen sound --stepdpo-chosen rollout --rollouts 4 --max-tokens 160 --seed "$S" --model "$R/sft-more" --threads 1
[ -f "$P/dpo/model.safetensors" ] || sw dpo --model "$R/sft-more" --pairs "$P/stepdpo.jsonl" "${dpo_knobs[@]}" \
  --out "$P/dpo"
evaluate "$P/dpo" step-dpo-onpolicy-after-sft-more
printf '%s\n' "${results[@]}"
