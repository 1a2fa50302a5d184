#!/usr/bin/env bash
# docs/RESULTS.md "Log-likelihood scoring": ARC-Easy and ARC-Challenge (500 items each) scored by
# `t2 eval --score loglik` on stories260K, the bundled t2-base and two random-weight controls of
# the same shapes and vocabularies; the mc families on t2-base; paired McNemar tests between
# them (bench/paired.py). About 15 minutes on 2 cores; skips (exit 77) without ../shared/assets.
#
#   bench/loglik.sh [BUILD_DIR] [OUT_DIR]        (build, docs/results/loglik)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
out=${2:-$here/docs/results/loglik}
t2=$build/bin/t2
A=${T2_ASSETS:-$here/../shared/assets}
py=/usr/bin/python3
[ -f "$A/models/stories260K.bin" ] && [ -d "$A/data/arc" ] ||
    { echo "bench/loglik.sh: no $A/models/stories260K.bin or $A/data/arc" >&2; exit 77; }
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
log() { echo "== $*" >&2; }

log "random-weight controls: t2-base's shape (byte vocabulary, lr 0 = the initial weights) and"
log "stories260K's shape with its tok512 vocabulary"
printf 'a\n\nb\n' > "$tmp/t.txt"
"$t2" train -f "$tmp/t.txt" -o "$tmp/random-base.gguf" --dim 128 --hidden 384 --layers 6 \
    --heads 4 --ctx 128 --steps 1 --lr 0 --min-lr 0 --init-seed 7 -T 2 -j 2 > /dev/null 2>&1
"$t2" init -o "$tmp/random-260K.gguf" --dim 64 --hidden 172 --layers 5 --heads 8 --kv-heads 4 \
    --vocab 512 --seq-len 512 --tied --seed 7 -z "$A/models/tok512.bin" > /dev/null
models=("stories260K:$A/models/stories260K.bin:-z $A/models/tok512.bin"
        "t2-base:$here/models/t2-base.gguf:" "random-base:$tmp/random-base.gguf:"
        "random-260K:$tmp/random-260K.gguf:")
for set in arc-easy arc-challenge; do
    for m in "${models[@]}"; do
        IFS=: read -r name path extra <<< "$m"
        log "$set: $name"
        # shellcheck disable=SC2086
        "$t2" eval -m "$path" $extra --task "$set" --n 500 --score loglik -j 2 \
            --data "$A/data" --csv "$out/$set.$name.csv" > "$out/$set.$name.txt" \
            2> "$out/$set.$name.err"
    done
done
log "mc families on t2-base"
"$t2" eval -m "$here/models/t2-base.gguf" --task mc,mc-hard,v2-mc,v2-mc-num --n 200 \
    --score loglik -j 2 --csv "$out/mc.t2-base.csv" > "$out/mc.t2-base.txt"
log "paired tests"
{
    for set in arc-easy arc-challenge; do
        for pair in "stories260K random-260K" "t2-base random-base" "stories260K t2-base"; do
            read -r a b <<< "$pair"
            for col in correct_char correct_pmi; do
                echo "## $set $col: A = $a, B = $b"
                "$py" "$here/bench/paired.py" "$out/$set.$a.csv" "$out/$set.$b.csv" --col "$col"
            done
        done
        for name in stories260K t2-base random-base random-260K; do
            echo "## $set $name: A = answer-only control (uncond), B = char"
            "$py" "$here/bench/paired.py" "$out/$set.$name.csv" "$out/$set.$name.csv" \
                --col correct_uncond --col-b correct_char
        done
    done
} > "$out/paired.txt"

"$py" "$here/bench/loglik_table.py" "$out" > "$out/table.md"
log "done: $out"
