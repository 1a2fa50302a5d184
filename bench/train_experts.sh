#!/usr/bin/env bash
# Reproduce the bundled SVF experts (models/experts/) and the LoRA baseline of docs/RESULTS.md
# Table 1 on the bundled model. One rank, two threads; 2-5 minutes per run on 2 cores (about
# 40 minutes in all).
#
#   bench/train_experts.sh [BUILD_DIR] [OUT_DIR]        (defaults: build, models/experts)
#   STEPS=200 BATCH=64 LR=2e-2 SEED=1 LORA_LRS="2e-3 5e-4" bench/train_experts.sh
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
lora_lrs=${LORA_LRS:-2e-3 5e-4} lora_rank=${LORA_RANK:-16}
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
            for llr in $lora_lrs; do
                "$t2" svf --task "$task" --lora "$lora_rank" --lr "$llr" "${common[@]}" \
                    -o "$out/lora$lora_rank-$llr-$task.gguf"
            done
        fi
    done
done
