#!/usr/bin/env bash
# Reproduce the bundled SVF experts (models/experts/) and the LoRA baseline of docs/RESULTS.md
# Table 1 on the bundled model. One rank, two threads; about 5 minutes per expert on 2 cores.
#
#   bench/train_experts.sh [BUILD_DIR] [OUT_DIR]        (defaults: build, models/experts)
#   STEPS=200 BATCH=64 LR=2e-2 SEED=1 LORA_LR=... bench/train_experts.sh
#   WHAT="svf" or WHAT="lora" to run only one part
#
# Logs (CSV per step, SVG plot) go next to each output as OUT.csv / OUT.svg.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
out=${2:-$here/models/experts}
t2=$build/bin/t2
model=$here/models/t2-base.gguf
steps=${STEPS:-200} batch=${BATCH:-64} lr=${LR:-2e-2} seed=${SEED:-1}
lora_lr=${LORA_LR:-2e-3} lora_rank=${LORA_RANK:-16}
what=${WHAT:-svf lora}
mkdir -p "$out"
[ -f "$out/factors.gguf" ] || "$t2" decompose -m "$model" -o "$out/factors.gguf"
common=(-m "$model" -n "$steps" -b "$batch" -s "$seed" --eval-every 10 --val-n 300)
for w in $what; do
    for task in math code mc classify; do
        if [ "$w" = svf ]; then
            "$t2" svf --task "$task" --factors "$out/factors.gguf" --lr "$lr" "${common[@]}" \
                -o "$out/$task.gguf"
        elif [ "$task" != classify ]; then
            "$t2" svf --task "$task" --lora "$lora_rank" --lr "$lora_lr" "${common[@]}" \
                -o "$out/lora-$task.gguf"
        fi
    done
done
