#!/usr/bin/env bash
# The paper's data-limited regime (issue 14, item 4): fixed training sets of SIZES items (t2 svf
# --train-n: the same items every epoch; the best validation step is kept = early stopping),
# SVF against LoRA of rank 1, 4 and 16 and against supervised fine-tuning of every weight
# (t2 train on the same items' documents), SEEDS seeds each; test accuracy (n 500) per family.
#
#   bench/datalimited.sh [BUILD_DIR] [OUT_DIR]     (build, docs/results/datalimited)
#   environment: FAMILIES ("math code mc"), SIZES ("64 256 1024"), SEEDS ("1 2 3"),
#                METHODS ("svf lora1 lora4 lora16 sft"), STEPS (200), BATCH (64)
# Writes OUT/FAMILY-SIZE-METHOD-sSEED.txt (t2 eval output, with a summary line) and .csv
# (per item, for bench/paired.py) and OUT/summary.tsv (family, size, method, seed, correct, n).
# The full grid is 3 x 3 x 5 x 3 = 135 trainings: days on 2 cores; run a slice with the
# environment variables.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
out=${2:-$here/docs/results/datalimited}
t2=$build/bin/t2
M=$here/models/t2-base.gguf
families=${FAMILIES:-math code mc} sizes=${SIZES:-64 256 1024} seeds=${SEEDS:-1 2 3}
methods=${METHODS:-svf lora1 lora4 lora16 sft} steps=${STEPS:-200} batch=${BATCH:-64}
mkdir -p "$out"
F=$out/factors.gguf
[ -f "$F" ] || "$t2" decompose -m "$M" -o "$F" 2> /dev/null
common=(-n "$steps" -b "$batch" --eval-every 10 --val-n 200 -j 2)
for fam in $families; do
    for size in $sizes; do
        for seed in $seeds; do
            for meth in $methods; do
                tag=$fam-$size-$meth-s$seed
                [ -s "$out/$tag.txt" ] && continue
                echo "== $tag" >&2
                case $meth in
                svf)
                    "$t2" svf --task "$fam" -m "$M" --factors "$F" --lr 2e-2 --train-n "$size" \
                        -s "$seed" "${common[@]}" -o "$out/$tag.gguf" > "$out/$tag.log" 2>&1
                    ev=(--factors "$F" --expert "$out/$tag.gguf" -m "$M") ;;
                lora*)
                    "$t2" svf --task "$fam" -m "$M" --lora "${meth#lora}" --lr 2e-3 \
                        --train-n "$size" -s "$seed" "${common[@]}" -o "$out/$tag.gguf" \
                        > "$out/$tag.log" 2>&1
                    ev=(-m "$out/$tag.gguf") ;;
                sft)
                    # the same items as t2 svf --train-n SIZE -s SEED draws
                    "$t2" tasks dump --family "$fam" --split train --n "$size" --seed "$seed" \
                        > "$out/$tag.docs.txt"
                    "$t2" train -m "$M" -f "$out/$tag.docs.txt" -o "$out/$tag.gguf" \
                        -n "$steps" -b 16 -T 64 --lr 1e-4 -s "$seed" -j 2 \
                        > "$out/$tag.log" 2>&1
                    ev=(-m "$out/$tag.gguf") ;;
                *) echo "bench/datalimited.sh: unknown method $meth" >&2; exit 2 ;;
                esac
                "$t2" eval "${ev[@]}" --task "$fam" --n 500 -j 2 --batch 16 \
                    --csv "$out/$tag.csv" > "$out/$tag.txt"
                rm -f "$out/$tag.gguf"
                awk -v t="$fam	$size	$meth	$seed" '/^summary:/ {
                    for (i = 1; i <= NF; i++) { split($i, kv, "=");
                        if (kv[1] == "correct") c = kv[2]; if (kv[1] == "n") n = kv[2] }
                    print t "\t" c "\t" n }' "$out/$tag.txt" >> "$out/summary.tsv"
            done
        done
    done
done
