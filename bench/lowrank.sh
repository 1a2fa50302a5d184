#!/bin/bash
# lowrank.sh - the low-rank application of an expert (t2 --apply lowrank --lowrank R): the
# quantized base weights plus U diag(s'-s) V^T on the R directions of largest |s'-s|, against the
# full merged path (W' = U diag(s') V^T in F32) and the base model.
#
#   bench/lowrank.sh [BIN]        (BIN: folder with t2; default build/bin)
#
# Models: a random qwen2 model (4 layers of 256, MLP 768, GQA 4/2, vocabulary 512) quantized to
# Q4_K by t2 init, with a random expert (p = 0.1 + N(0, 0.5^2), max_mult 2, every matrix); and
# T2's own trained model (models/t2-base.gguf, F32) with its trained math expert (mlp).
# For each R it prints the truncation error t2 reports (||dW - dW_r||_F / ||dW||_F over all
# matrices, and the worst matrix) and, over the logits of a 48-token prompt (batch) :
#   vs merged   max |logits_lowrank - logits_merged| / (max - min of the merged logits)
#   of effect   ||logits_lowrank - logits_merged||_F / ||logits_base - logits_merged||_F
#               (how much of the expert's effect on the logits is lost; 1 = all of it)
set -eu
BIN="${1:-build/bin}"
HERE="$(cd "$(dirname "$0")" && pwd)"
PY=/usr/bin/python3
T2="$BIN/t2"
W="$(mktemp -d /tmp/t2_lowrank.XXXXXX)"
trap 'rm -rf "$W"' EXIT
TOKS=$(seq 1 48 | awk '{ printf "%s%d", (NR > 1 ? "," : ""), ($1 * 37 + 11) % 250 + 3 }')

compare() { # base merged lowrank
    $PY - "$@" << 'EOF'
import sys
import numpy as np
b, m, l = (np.fromfile(p, dtype="<f4").astype(np.float64) for p in sys.argv[1:4])
rng = m.max() - m.min()
print("%.3e %.3e" % (np.abs(l - m).max() / rng, np.linalg.norm(l - m) / np.linalg.norm(b - m)))
EOF
}

measure() { # name model factors expert ranks...
    local name=$1 model=$2 factors=$3 expert=$4
    shift 4
    "$T2" logits -m "$model" --tokens "$TOKS" -o "$W/base.f32" -j 2 2> /dev/null
    "$T2" logits -m "$model" --tokens "$TOKS" -o "$W/merged.f32" -j 2 --factors "$factors" \
        --expert "$expert" 2> /dev/null
    printf "%-8s %6s %12s %12s %12s %12s\n" "$name" R "dW err all" "dW err worst" "vs merged" \
        "of effect"
    for r in "$@"; do
        "$T2" logits -m "$model" --tokens "$TOKS" -o "$W/lr.f32" -j 2 --factors "$factors" \
            --expert "$expert" --lowrank "$r" 2> "$W/lr.err"
        local all worst
        all=$(sed -n 's/.*= \([^ ]*\) over all.*/\1/p' "$W/lr.err")
        worst=$(sed -n 's/.*, \([^ ]*\) at worst.*/\1/p' "$W/lr.err")
        read -r vm eff < <(compare "$W/base.f32" "$W/merged.f32" "$W/lr.f32")
        printf "%-8s %6d %12s %12s %12s %12s\n" "$name" "$r" "$all" "$worst" "$vm" "$eff"
    done
}

# random qwen2, Q4_K, random expert on every matrix
"$T2" init -o "$W/q.gguf" --arch qwen2 --dim 256 --hidden 768 --layers 4 --heads 4 \
    --kv-heads 2 --vocab 512 --seq-len 128 --type q4_k --seed 5 > /dev/null 2>&1
"$T2" decompose -m "$W/q.gguf" -o "$W/qf.gguf" --targets all > /dev/null 2>&1
"$T2" expert init -m "$W/q.gguf" --factors "$W/qf.gguf" -o "$W/qe.gguf" --name e --noise 0.5 \
    --max-mult 2 --seed 3 > /dev/null 2>&1
measure qwen2q4k "$W/q.gguf" "$W/qf.gguf" "$W/qe.gguf" 4 16 32 64 128 256

# T2's trained model and its trained math expert
M="$HERE/../models/t2-base.gguf"
if [ -f "$M" ] && [ -f "$HERE/../models/experts/math.gguf" ]; then
    "$T2" decompose -m "$M" -o "$W/tf.gguf" > /dev/null 2>&1
    measure t2-base "$M" "$W/tf.gguf" "$HERE/../models/experts/math.gguf" 4 16 32 64 128
fi
