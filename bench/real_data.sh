#!/usr/bin/env bash
# Issue 6's commands on a real data set and a real model (docs/RESULTS.md, "Real data"): GSM8K
# and MBPP with the llama2.c stories260K, which writes stories and scores about 0 — the point
# is that every command runs end to end on real files. About 5 minutes on 2 cores.
#
#   bench/real_data.sh [BUILD_DIR] [OUT_DIR]      (defaults: build, docs/results)
#   T2_ASSETS=../shared/assets (the default) holds models/ and data/
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
out=${2:-$here/docs/results}
export T2_ASSETS=${T2_ASSETS:-$here/../shared/assets}
t2=$build/bin/t2
A=$T2_ASSETS/models
M=(-m "$A/stories260K.bin" -z "$A/tok512.bin")
w=$(mktemp -d -t t2-real.XXXXXX)
trap 'rm -rf "$w"' EXIT
mkdir -p "$out"
{
"$t2" decompose -m "$A/stories260K.bin" -o "$w/factors.gguf"
"$t2" svf --task gsm8k "${M[@]}" --factors "$w/factors.gguf" --lr 2e-2 -n 20 -b 8 \
    --val-n 50 --eval-every 10 --max-tokens 64 -o "$w/math.gguf"
"$t2" svf --task mbpp "${M[@]}" --factors "$w/factors.gguf" --lr 2e-2 -n 5 -b 8 \
    --val-n 20 --eval-every 5 --max-tokens 64 -o "$w/code.gguf"
"$t2" svf --task classify "${M[@]}" --factors "$w/factors.gguf" --lr 2e-2 -n 20 -b 16 \
    --val-n 50 --eval-every 10 -o "$w/classify.gguf"
# ARC has only a test split: nothing to train an mc expert on, so it is initialised
"$t2" expert init -m "$A/stories260K.bin" --factors "$w/factors.gguf" -o "$w/mc.gguf" --name mc
"$t2" adapt --task gsm8k "${M[@]}" --factors "$w/factors.gguf" --shots 10 --pop 8 --iters 5 \
    --max-tokens 64 -o "$w/gsm8k.profile.gguf"
} > "$out/real-train.txt" 2>&1
for s in none prompt classifier "profile:$w/gsm8k.profile.gguf"; do
    "$t2" eval "${M[@]}" --factors "$w/factors.gguf" --task gsm8k,arc-challenge --n 100 \
        --max-tokens 64 --strategy "$s" -j 2
done > "$out/real-eval.txt" 2>&1
echo "done: $out/real-train.txt, $out/real-eval.txt"
