#!/bin/bash
# svf_train.sh - `t2 svf` (REINFORCE training of SVF experts and of the LoRA baseline) end to end
# on the bundled model, a few steps each:
#   * outputs: the expert loads (t2 expert show) and applies (t2 eval --expert), the CSV has a
#     row per step plus step 0 (the base model's validation accuracy), the SVG two polylines;
#   * data parallelism: mpirun -np 2 gives the same rollouts, rewards and validation
#     accuracies as one rank (each prompt's sample has its own seed, whatever rank draws it);
#   * the KL penalty is logged (> 0 once the expert moves), LoRA writes a model t2 eval runs;
#   * bad invocations fail with a message naming the problem.
set -u
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" # Open MPI's own leaks
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
BIN=${T2_BIN:-build/bin}
HERE="$(cd "$(dirname "$0")" && pwd)"
MODEL="$HERE/../models/t2-base.gguf"
. "$HERE/expect.sh"
T2="$BIN/t2"
ok() { echo "ok   $1"; pass=$((pass+1)); }
bad() { echo "FAIL $1"; fail=$((fail+1)); }
run "$T2" decompose -m "$MODEL" -o "$tmp/f.gguf"
SMALL=(-m "$MODEL" --factors "$tmp/f.gguf" -n 3 -b 8 --val-n 12 --eval-every 2 --lr 2e-2 -j 1)

# one rank
"$T2" svf --task math "${SMALL[@]}" -o "$tmp/a.gguf" 2> "$tmp/a.err" || { cat "$tmp/a.err"; bad "t2 svf"; }
[ "$(wc -l < "$tmp/a.gguf.csv")" = 5 ] && ok "csv: header, step 0 and 3 steps" || bad "csv rows: $(cat "$tmp/a.gguf.csv")"
head -1 "$tmp/a.gguf.csv" | grep -qx "step,reward,train_acc,loss,kl,grad_norm,val_acc,tokens_per_s,elapsed" \
    && ok "csv header" || bad "csv header"
[ "$(grep -c "<polyline" "$tmp/a.gguf.svg")" = 2 ] && ok "svg: reward and validation curves" || bad "svg"
"$T2" expert show -m "$MODEL" --factors "$tmp/f.gguf" "$tmp/a.gguf" > "$tmp/show" 2>&1 && grep -q "REINFORCE" "$tmp/show" \
    && ok "expert loads, training record kept" || { cat "$tmp/show"; bad "expert show"; }
"$T2" eval -m "$MODEL" --task math --n 8 --factors "$tmp/f.gguf" --expert "$tmp/a.gguf" -j 1 > "$tmp/ev" 2>&1 \
    && ok "t2 eval applies the expert" || { cat "$tmp/ev"; bad "eval with the expert"; }

# two ranks: the same run
if command -v mpirun > /dev/null; then
    mpirun -np 2 "$T2" svf --task math "${SMALL[@]}" -o "$tmp/b.gguf" 2> "$tmp/b.err" || { cat "$tmp/b.err"; bad "mpirun -np 2 t2 svf"; }
    if cmp -s <(cut -d, -f1,2,3,7 "$tmp/a.gguf.csv") <(cut -d, -f1,2,3,7 "$tmp/b.gguf.csv"); then
        ok "2 ranks: same rewards and validation accuracies as 1 rank"
    else
        bad "2 ranks differ:"; paste -d'|' "$tmp/a.gguf.csv" "$tmp/b.gguf.csv"
    fi
fi

# KL penalty and the LoRA baseline
"$T2" svf --task code "${SMALL[@]}" --kl 0.1 -o "$tmp/k.gguf" 2> "$tmp/k.err" || { cat "$tmp/k.err"; bad "--kl"; }
awk -F, 'NR > 2 && $5 > 0 { k++ } END { exit !(k >= 1) }' "$tmp/k.gguf.csv" && ok "KL logged" || bad "KL column: $(cut -d, -f5 "$tmp/k.gguf.csv" | tr '\n' ' ')"
"$T2" svf --task mc -m "$MODEL" -n 2 -b 8 --val-n 8 --lora 4 --lr 1e-3 -j 1 -o "$tmp/l.gguf" 2> "$tmp/l.err" || { cat "$tmp/l.err"; bad "--lora"; }
grep -q "rank-4 LoRA adapters on the mlp matrices, 36864 trainable" "$tmp/l.err" && ok "LoRA parameter count" || { head -3 "$tmp/l.err"; bad "LoRA count"; }
"$T2" eval -m "$tmp/l.gguf" --task mc --n 4 -j 1 > "$tmp/lev" 2>&1 && ok "LoRA model runs" || { cat "$tmp/lev"; bad "LoRA model"; }

# qwen3 (per-head Q/K RMSNorm, head dim 24 != dim / heads 16): t2 svf trains every matrix, the
# backward going through the Q/K norms (tests/grad_check.py checks its gradients)
TOK512="${T2_ASSETS:-$HERE/../../shared/assets}/models/tok512.bin"
if [ -f "$TOK512" ]; then
    Q3=(-m "$tmp/q3.gguf" --factors "$tmp/q3f.gguf" -n 2 -b 4 --val-n 4 --eval-every 2 -j 1)
    "$T2" init -o "$tmp/q3.gguf" --arch qwen3 --dim 64 --hidden 96 --layers 2 --heads 4 \
        --kv-heads 2 --head-dim 24 --vocab 512 -z "$TOK512" --seq-len 256 > /dev/null 2>&1 &&
        "$T2" decompose -m "$tmp/q3.gguf" -o "$tmp/q3f.gguf" --targets all > /dev/null &&
        "$T2" svf --task math "${Q3[@]}" --targets all -o "$tmp/q3e.gguf" 2> "$tmp/q3.err" &&
        awk -F, 'NR > 2 && $6 > 0 { g++ } END { exit !(g == 2) }' "$tmp/q3e.gguf.csv" &&
        "$T2" expert show -m "$tmp/q3.gguf" --factors "$tmp/q3f.gguf" "$tmp/q3e.gguf" > /dev/null 2>&1 \
        && ok "t2 svf on qwen3: 2 steps with gradients, the expert loads" \
        || { cat "$tmp/q3.err"; bad "t2 svf on qwen3"; }
else
    echo "skip qwen3: no $TOK512"
fi

# bad invocations
expect_fail "no factors" "give --factors" "$T2" svf --task math -m "$MODEL" -o "$tmp/x.gguf"
expect_fail "unknown task" "unknown family 'maths'" "$T2" svf --task maths -m "$MODEL" --factors "$tmp/f.gguf" -o "$tmp/x.gguf"
expect_fail "targets beyond the factors" "hold only mlp" "$T2" svf --task math --targets attn "${SMALL[@]}" -o "$tmp/x.gguf"
expect_fail "an expert given as factors" "expected 'factors'" "$T2" svf --task math -m "$MODEL" --factors "$tmp/a.gguf" -o "$tmp/x.gguf"
expect_fail "2 ranks, batch 1" "smaller than the 2 ranks" mpirun -np 2 "$T2" svf --task math "${SMALL[@]}" -b 1 -o "$tmp/x.gguf"
expect_fail "bad lr" "--lr" "$T2" svf --task math "${SMALL[@]}" --lr -1 -o "$tmp/x.gguf"
expect_fail "no output" "give -o" "$T2" svf --task math "${SMALL[@]}"
expect_end
