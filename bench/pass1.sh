#!/bin/bash
# pass1.sh - docs/RESULTS.md's Table 3 (pass 1 / pass 2 time per transfer family) with pass 1
# by scoring and by generating, and pass 1 against the price of one prefill (t2-bench-pass1).
#
#   bench/pass1.sh [BUILD_DIR] [N] [OUT_DIR]     (defaults: build, 500, /tmp/t2-pass1)
#
# 1. t2 eval --strategy prompt|classifier --pass1 score|generate and --strategy none on
#    math-hard, code-hard (N items) and mc-hard (N items or its 450), batch 16, 2 threads: the
#    pass-1 and pass-2 seconds of each family -> OUT_DIR/table3.csv and a Markdown table, plus
#    the label agreement of score and generate (the confusion matrices of the two runs).
# 2. t2-bench-pass1 (one thread, process CPU time) on the bundled model (base weights and the classifier expert) and, with
#    T2_BIG=1, on a random model of the 134 M shape (t2 init, the llama2 vocabulary of the
#    shared assets): generate / score / prefill-alone seconds -> OUT_DIR/pass1-*.csv.
# Timings on a shared machine are noisy: compare the columns of one run.
set -euo pipefail
B=${1:-build}
N=${2:-500}
OUT=${3:-/tmp/t2-pass1}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
T2=$B/bin/t2
MODEL=$ROOT/models/t2-base.gguf
EXP=$ROOT/models/experts
mkdir -p "$OUT"
F=$OUT/factors.gguf
[ -f "$F" ] || "$T2" decompose -m "$MODEL" -o "$F" -j 2 >/dev/null
FAMS=math-hard,code-hard,mc-hard
run() { # NAME ARGS...: t2 eval's output per family (mc-hard has 450 test items) into OUT/NAME.txt
    local name=$1 fam n
    shift
    : >"$OUT/$name.txt"
    for fam in ${FAMS//,/ }; do
        n=$N
        [ "$fam" = mc-hard ] && [ "$n" -gt 450 ] && n=450
        "$T2" eval -m "$MODEL" --factors "$F" --experts "$EXP" --task "$fam" --n "$n" \
            --batch 16 -j 2 "$@" >>"$OUT/$name.txt" 2>/dev/null
    done
}
run none --strategy none
for s in classifier prompt; do
    for p in score generate; do run "$s-$p" --strategy $s --pass1 $p; done
done
# family rows of a t2 eval table: family pass1_s pass2_s items
rows() { awk -v f="$FAMS" 'BEGIN{n=split(f,a,",");for(i=1;i<=n;i++)w[a[i]]=1}
    ($1 in w) && NF >= 12 && !seen[$1]++ {print $1, $(NF-2), $(NF-1), $3}' "$OUT/$1.txt"; }
{
    echo "family,items,strategy,pass1,pass1_s,pass2_s"
    for s in classifier prompt; do
        for p in score generate; do
            rows "$s-$p" | while read -r fam p1 p2 n; do echo "$fam,$n,$s,$p,$p1,$p2"; done
        done
    done
    rows none | while read -r fam p1 p2 n; do echo "$fam,$n,none,-,0,$p2"; done
} >"$OUT/table3.csv"
echo "| family | items | pass 1 classifier (score / generate) | pass 2 classifier |" \
     "pass 1 prompt (score / generate) | pass 2 prompt | none (one pass) |"
echo "|---|---|---|---|---|---|---|"
for fam in ${FAMS//,/ }; do
    g() { awk -F, -v f="$fam" -v s="$1" -v p="$2" -v c="$3" '$1==f && $3==s && $4==p {print $c}' \
        "$OUT/table3.csv"; }
    n=$(g none - 2)
    printf "| %s | %s | %s s / %s s | %s s | %s s / %s s | %s s | %s s |\n" "$fam" "$n" \
        "$(g classifier score 5)" "$(g classifier generate 5)" "$(g classifier score 6)" \
        "$(g prompt score 5)" "$(g prompt generate 5)" "$(g prompt score 6)" "$(g none - 6)"
done
# agreement: the confusion matrices of score and generate (same items, same order)
for s in classifier prompt; do
    for p in score generate; do
        awk '/^true label/{on=1;next} on&&/^all /{on=0} on' "$OUT/$s-$p.txt" >"$OUT/$s-$p.conf"
    done
    if cmp -s "$OUT/$s-score.conf" "$OUT/$s-generate.conf"; then
        echo "$s: pass-1 confusion matrices of score and generate identical"
    else
        echo "$s: pass-1 confusion matrices differ:"
        paste -d'|' "$OUT/$s-score.conf" "$OUT/$s-generate.conf"
    fi
done
PB=$B/bin/t2-bench-pass1
# by process CPU time on one thread (a loaded machine disturbs it far less than wall time)
"$PB" -m "$MODEL" --task $FAMS --n 200 -j 1 --cpu 1 --reps 2 --csv "$OUT/pass1-base.csv"
"$PB" -m "$MODEL" --factors "$F" --expert "$EXP/classify.gguf" --task $FAMS --n 200 -j 1 \
    --cpu 1 --reps 2 --csv "$OUT/pass1-classifier.csv"
if [ "${T2_BIG:-0}" = 1 ]; then
    A=${T2_ASSETS:-$ROOT/../shared/assets}
    BIG=$OUT/m134.gguf
    [ -f "$BIG" ] || "$T2" init -o "$BIG" --dim 768 --hidden 2048 --layers 12 --heads 12 \
        --vocab 32000 --seq-len 256 -z "$A/models/tokenizer.bin" >/dev/null
    "$PB" -m "$BIG" --task $FAMS --n 8 -j 1 --cpu 1 --batch 8 --reps 1 --csv "$OUT/pass1-134m.csv"
fi
