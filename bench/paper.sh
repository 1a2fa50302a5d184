#!/usr/bin/env bash
# paper.sh - the Transformer² paper's pipeline on your model, with the real data sets:
#
#   1 decompose          SVD factors of the weight matrices
#   2 experts            SVF experts by REINFORCE: math on GSM8K, code on MBPP, mc on ARC-Easy
#                        (its rows after the first 500; tasks.h T2_ARC_EVAL_ROWS), the
#                        classifier expert on the classification prompts
#   3 table 1            base and each expert on GSM8K, MBPP, ARC-Easy (first 500 rows), and
#                        ARC-Easy by log-likelihood (base and the mc expert)
#   4 few-shot           a CEM task profile per transfer task (HumanEval: shots from its test
#                        split, as the paper's; ARC-Challenge: its train rows)
#   5 tables 2 and 3     HumanEval and ARC-Challenge (transfer) with the strategies none,
#                        prompt, classifier and the profile; pass-1 / pass-2 times per family
#
#   bench/paper.sh [options] MODEL.gguf
#     --dry-run          print each step's command and its estimated time, run nothing but
#                        a short speed measurement of this machine (cached in OUT/speed.txt)
#     --shape D,H,L,V    with --dry-run: plan for a model of this shape (dim, MLP hidden,
#                        layers, vocabulary; no file needed) instead of MODEL
#     --tiny             a smoke run: 1 step, 2 items, 8 tokens (checks that everything runs)
#     --steps N          SVF steps per expert (default 200)    --batch N   prompts per step (16)
#     --n N              items per evaluation (default 500; ARC at most 500, HumanEval 164)
#     --out DIR          outputs (default paper-out/)   --data DIR   the data sets
#     --bin DIR          T2's build/bin                 -j N         threads
#   Environment: T2_ASSETS (default ../shared/assets beside the repository).
#
# The estimates scale this machine's measured speed on a 17 M-parameter reference model (prompt
# and generation tokens per second, and the SVD time) by the parameter count (matrix sizes for
# the SVD), assuming every answer runs to its token limit: an upper bound, within a factor of a
# few. Outputs: OUT/factors.gguf, OUT/experts/, OUT/table1-*.txt, OUT/table2-*.txt, OUT/plan.txt.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin=$here/build/bin out=paper-out data="" dry=0 tiny=0 steps=200 batch=16 n=500 threads=2
shape="" model=""
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
while [ $# -gt 0 ]; do
    case $1 in
    --dry-run) dry=1 ;;
    --tiny) tiny=1 ;;
    --shape) shape=${2:?}; shift ;;
    --steps) steps=${2:?}; shift ;;
    --batch) batch=${2:?}; shift ;;
    --n) n=${2:?}; shift ;;
    --out) out=${2:?}; shift ;;
    --data) data=${2:?}; shift ;;
    --bin) bin=${2:?}; shift ;;
    -j) threads=${2:?}; shift ;;
    -h | --help) usage ;;
    -*) echo "bench/paper.sh: unknown option $1" >&2; usage ;;
    *) [ -z "$model" ] || { echo "bench/paper.sh: one model only ($1)" >&2; exit 2; }; model=$1 ;;
    esac
    shift
done
for v in steps batch n threads; do
    [[ ${!v} =~ ^[1-9][0-9]{0,6}$ ]] ||
        { echo "bench/paper.sh: --$v '${!v}' is not a count" >&2; exit 2; }
done
[ -n "$model" ] || [ -n "$shape" ] || { echo "bench/paper.sh: give MODEL.gguf" >&2; usage; }
[ -z "$shape" ] || [ "$dry" = 1 ] || { echo "bench/paper.sh: --shape needs --dry-run" >&2; exit 2; }
[ -z "$model" ] || [ -f "$model" ] || { echo "bench/paper.sh: $model: no such file" >&2; exit 1; }
A=${T2_ASSETS:-$here/../shared/assets}
data=${data:-$A/data}
t2=$bin/t2
[ -x "$t2" ] || { echo "bench/paper.sh: $t2: not built" >&2; exit 1; }
py=/usr/bin/python3
mkdir -p "$out/experts"
max_tok=256 val_n=50 shots=10 pop=16 iters=10
if [ "$tiny" = 1 ]; then
    steps=1 batch=2 n=2 max_tok=8 val_n=2 shots=2 pop=2 iters=1
fi
[ "$n" -le 500 ] || n=500 # ARC's evaluated rows; its experts train on the rest

# The model's parameter count and SVD work (sum of m n min(m, n) over the layers' matrices), from
# the GGUF header (or --shape): "PARAMS SVD".
model_size() {
    "$py" - "$@" << 'PYEOF'
import struct, sys
def shape_size(d, h, l, v):
    mats = [(d, d)] * 4 + [(h, d)] * 2 + [(d, h)]
    return l * sum(m * n for m, n in mats) + 2 * v * d, l * sum(m * n * min(m, n) for m, n in mats)
def gguf_size(path):
    f = open(path, "rb")
    def rd(fmt):
        return struct.unpack("<" + fmt, f.read(struct.calcsize("<" + fmt)))[0]
    def skip(t):
        sizes = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
        if t == 8: f.seek(rd("Q"), 1)
        elif t == 9:
            et, n = rd("I"), rd("Q")
            for _ in range(n): skip(et)
        elif t in sizes: f.seek(sizes[t], 1)
        else: raise SystemExit("%s: bad GGUF value type %d" % (path, t))
    if f.read(4) != b"GGUF": raise SystemExit("%s: not a GGUF file" % path)
    rd("I"); nt, nkv = rd("Q"), rd("Q")
    if nt > 1 << 20 or nkv > 1 << 20: raise SystemExit("%s: bad GGUF header" % path)
    for _ in range(nkv):
        f.seek(rd("Q"), 1); skip(rd("I"))
    params = svd = 0
    for _ in range(nt):
        name = f.read(rd("Q")).decode("utf-8", "replace")
        nd = rd("I")
        if nd > 4: raise SystemExit("%s: tensor %s has %d dimensions" % (path, name, nd))
        ne = [rd("Q") for _ in range(nd)]
        rd("I"); rd("Q")
        p = 1
        for x in ne: p *= x
        params += p
        if nd == 2 and name.startswith("blk."): svd += ne[0] * ne[1] * min(ne)
    return params, svd
a = sys.argv[1]
if a == "--shape":
    d, h, l, v = (int(x) for x in sys.argv[2].split(","))
    print(*shape_size(d, h, l, v))
else:
    print(*gguf_size(a))
PYEOF
}

# This machine's speed on a reference model: "PARAMS SVD PROMPT_TOK_S GEN_TOK_S SVD_SECONDS",
# measured once into OUT/speed.txt.
measure_speed() {
    if [ ! -s "$out/speed.txt" ]; then
        local r=$out/speed-ref.gguf toks t0 t1 t2s t3
        local shape=(--dim 512 --hidden 1376 --layers 4 --heads 8 --vocab 4096)
        [ "$tiny" = 1 ] && shape=(--dim 128 --hidden 344 --layers 2 --heads 4 --vocab 512)
        "$t2" init -o "$r" "${shape[@]}" --seq-len 256 --seed 3 > /dev/null
        toks=$(seq -s, 1 200)
        t0=$(date +%s.%N)
        "$t2" logits -m "$r" --tokens "$toks" --mode batch -o /dev/null -j "$threads"
        t1=$(date +%s.%N)
        "$t2" logits -m "$r" --tokens "$toks" --mode step -o /dev/null -j "$threads"
        t2s=$(date +%s.%N)
        "$t2" decompose -m "$r" -o "$out/speed-ref.factors.gguf" -j "$threads" > /dev/null 2>&1
        t3=$(date +%s.%N)
        read -r p s < <(model_size "$r")
        echo "$p $s $(echo "200 / ($t1 - $t0)" | bc -l) $(echo "200 / ($t2s - $t1)" | bc -l)" \
            "$(echo "$t3 - $t2s" | bc -l)" > "$out/speed.txt"
        rm -f "$r" "$out/speed-ref.factors.gguf"
    fi
    cat "$out/speed.txt"
}

if [ -n "$shape" ]; then read -r P SVD < <(model_size --shape "$shape")
else read -r P SVD < <(model_size "$model"); fi
read -r RP RSVD RPT RGT RSVDS < <(measure_speed)
# rates for this model: prompt and generation tokens per second, seconds of the SVD
PT=$(echo "$RPT * $RP / $P" | bc -l)
GT=$(echo "$RGT * $RP / $P" | bc -l)
SVDS=$(echo "$RSVDS * $SVD / $RSVD" | bc -l)

# Seconds to run ITEMS prompts of PROMPT tokens with answers of GEN tokens.
cost() { echo "$1 * ($2 / $PT + $3 / $GT)" | bc -l; }
# An expert: steps x batch rollouts (generation, then forward + backward = 3 forwards over the
# prompt and answer) and a validation every 10 steps.
svf_cost() {
    local p=$1
    echo "$steps * $batch * ($max_tok / $GT + 3 * ($p + $max_tok) / $PT)" \
        "+ ($steps / 10 + 1) * $(cost "$val_n" "$p" "$max_tok")" | bc -l
}
hms() {
    awk -v s="$1" 'BEGIN { s = int(s + 0.5)
        printf "%dh%02dm%02ds", s / 3600, s % 3600 / 60, s % 60 }'
}

total=0
plan=$out/plan.txt
: > "$plan"
# step NAME SECONDS CMD...: print the plan line; run it unless --dry-run
step() {
    local name=$1 est=$2
    shift 2
    total=$(echo "$total + $est" | bc -l)
    printf '%-28s ~%10s   %s\n' "$name" "$(hms "$est")" "$*" | tee -a "$plan"
    [ "$dry" = 1 ] && return 0
    local t0=$SECONDS
    if ! "$@" > "$out/$name.txt" 2> "$out/$name.err"; then
        echo "bench/paper.sh: step $name failed (exit $?); see $out/$name.err:" >&2
        tail -5 "$out/$name.err" >&2
        exit 1
    fi
    echo "    done in $((SECONDS - t0)) s" | tee -a "$plan"
}

printf 'model %s: %.3g parameters; this machine: %.3g prompt tok/s, %.3g generated tok/s %s\n' \
    "${model:-shape $shape}" "$P" "$PT" "$GT" "(scaled)" | tee -a "$plan"
M=(-m "${model:-MODEL.gguf}")
F=$out/factors.gguf E=$out/experts
common=(--data "$data" -j "$threads")
ev=("$t2" eval "${M[@]}" "${common[@]}" --max-tokens "$max_tok")
step decompose "$SVDS" "$t2" decompose "${M[@]}" -o "$F" -j "$threads"
sv=(--factors "$F" -n "$steps" -b "$batch" --val-n "$val_n" --max-tokens "$max_tok"
    --lr 2e-3 "${common[@]}")
step expert-math "$(svf_cost 100)" "$t2" svf --task gsm8k "${M[@]}" "${sv[@]}" --name math \
    -o "$E/math.gguf"
step expert-code "$(svf_cost 150)" "$t2" svf --task mbpp "${M[@]}" "${sv[@]}" --name code \
    -o "$E/code.gguf"
step expert-mc "$(svf_cost 70)" "$t2" svf --task arc-easy "${M[@]}" "${sv[@]}" --name mc \
    -o "$E/mc.gguf"
step expert-classify "$(svf_cost 60)" "$t2" svf --task classify "${M[@]}" "${sv[@]}" \
    --name classify -o "$E/classify.gguf"
t1=(--task gsm8k,mbpp,arc-easy --n "$n")
t1_cost=$(echo "$(cost "$n" 100 "$max_tok") + $(cost "$n" 150 "$max_tok")" \
    "+ $(cost "$n" 70 "$max_tok")" | bc -l)
step table1-base "$t1_cost" "${ev[@]}" "${t1[@]}" --csv "$out/table1-base.csv"
for e in math code mc; do
    step "table1-$e" "$t1_cost" "${ev[@]}" "${t1[@]}" --factors "$F" --expert "$E/$e.gguf" \
        --csv "$out/table1-$e.csv"
done
ll_cost=$(echo "2 * $(cost "$((4 * n))" 80 0)" | bc -l)
step table1-arc-loglik-base "$ll_cost" "$t2" eval "${M[@]}" "${common[@]}" --task arc-easy \
    --n "$n" --score loglik --csv "$out/table1-arc-loglik-base.csv"
step table1-arc-loglik-mc "$ll_cost" "$t2" eval "${M[@]}" "${common[@]}" --task arc-easy \
    --n "$n" --score loglik --factors "$F" --expert "$E/mc.gguf" \
    --csv "$out/table1-arc-loglik-mc.csv"
ad=(--factors "$F" --experts "$E" --mix-experts math,code,mc --shots "$shots" --pop "$pop"
    --iters "$iters" --max-tokens "$max_tok" "${common[@]}")
ad_cost=$(cost "$((iters * pop * shots))" 130 "$max_tok")
step fewshot-humaneval "$ad_cost" "$t2" adapt --task humaneval "${M[@]}" "${ad[@]}" \
    --shots-split test -o "$out/profile-humaneval.gguf"
step fewshot-arc-challenge "$ad_cost" "$t2" adapt --task arc-challenge "${M[@]}" "${ad[@]}" \
    -o "$out/profile-arc-challenge.gguf"
nh=$((n < 164 ? n : 164))
for fam in humaneval arc-challenge; do
    nf=$n p=70
    [ "$fam" = humaneval ] && nf=$nh p=130
    for s in none prompt classifier "profile:$out/profile-$fam.gguf"; do
        tag=${s%%:*} c=$(cost "$nf" "$p" "$max_tok")
        if [ "$tag" = prompt ] || [ "$tag" = classifier ]; then
            c=$(echo "$c + $(cost "$nf" "$p" 24)" | bc -l)
        fi
        step "table2-$fam-$tag" "$c" "${ev[@]}" --task "$fam" --n "$nf" --factors "$F" \
            --experts "$E" --strategy "$s" --csv "$out/table2-$fam-$tag.csv"
    done
done
printf 'total ~%s (estimates: every answer at its %d-token limit, no batching gain)\n' \
    "$(hms "$total")" "$max_tok" | tee -a "$plan"
[ "$dry" = 1 ] || echo "tables: $out/table1-*.txt (Table 1), $out/table2-*.txt (Tables 2 and 3)"
