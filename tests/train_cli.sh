#!/bin/bash
# train_cli.sh - `t2 train` end to end (single process):
#   * outputs: the model runs with `t2 run`, the CSV has one row per step, the SVG a polyline;
#   * resume: 5 steps + checkpoint + --resume for 5 more == 10 uninterrupted steps, bit for bit
#     (CSV loss / lr / grad-norm columns and the output GGUF);
#   * Ctrl-C: SIGINT finishes the step, writes the checkpoint, exits 130; the resumed run
#     again matches the uninterrupted one;
#   * bad invocations fail with a clear message.
set -u
# Under the sanitizer build: Open MPI (which `t2 train` initialises, as a singleton) leaks at
# MPI_Finalize from components it has already unloaded, so LeakSanitizer cannot even name them.
# Memory errors are still caught here; T2's own allocations are leak-checked by test_train.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
T2="${T2_BIN:-/work/main/build/bin}/t2"
HERE="$(cd "$(dirname "$0")" && pwd)"
. "$HERE/train_data.sh"
[ -x "$T2" ] || { echo "FAIL: $T2 not found (set T2_BIN)"; exit 1; }
W="$(mktemp -d /tmp/t2_train_cli.XXXXXX)"
trap 'rm -rf "$W"' EXIT
fail=0
ok() { echo "ok   $1"; }
bad() { echo "FAIL $1"; fail=1; }
make_train_text "$W/data.txt"
SHAPE="--dim 24 --hidden 40 --layers 2 --heads 4 --kv-heads 2 --ctx 32"
OPTS="-f $W/data.txt -T 24 -b 4 --lr 3e-3 --warmup 2 -j 2 -s 7"
cols() { cut -d, -f1-4 "$1"; }

# uninterrupted 10 steps
"$T2" train $SHAPE $OPTS -n 10 -o "$W/a.gguf" 2>"$W/a.err" || { cat "$W/a.err"; bad "train 10 steps"; }
[ "$(wc -l < "$W/a.gguf.csv")" = 11 ] && ok "csv has 10 rows" || bad "csv rows"
grep -q "<polyline" "$W/a.gguf.svg" && ok "svg plot" || bad "svg plot"
head -1 "$W/a.gguf.csv" | grep -qx "step,loss,lr,grad_norm,tokens_per_s,elapsed" && ok "csv header" || bad "csv header"
first=$(sed -n 2p "$W/a.gguf.csv" | cut -d, -f2); last=$(tail -1 "$W/a.gguf.csv" | cut -d, -f2)
awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a) }' && ok "loss decreases ($first -> $last)" || bad "loss decreases ($first -> $last)"
"$T2" run -m "$W/a.gguf" -n 20 -t 0 -p "the cat" > "$W/run.out" 2>&1 && ok "t2 run on the trained model" || { cat "$W/run.out"; bad "t2 run"; }

# 5 steps, stop (as if killed) with a checkpoint, resume to 10
"$T2" train $SHAPE $OPTS -n 10 -o "$W/b.gguf" --ckpt "$W/b.ckpt" --stop-after 5 2>"$W/b1.err" || { cat "$W/b1.err"; bad "train 5 steps"; }
[ -f "$W/b.ckpt" ] && [ ! -f "$W/b.gguf" ] && ok "checkpoint at step 5, no model yet" || bad "checkpoint at step 5"
"$T2" train $SHAPE $OPTS -n 10 -o "$W/b.gguf" --ckpt "$W/b.ckpt" --resume 2>"$W/b2.err" || { cat "$W/b2.err"; bad "resume"; }
grep -q "resumed from .* at step 5" "$W/b2.err" && ok "resume message" || bad "resume message"
if cmp -s <(cols "$W/a.gguf.csv") <(cols "$W/b.gguf.csv"); then ok "resumed loss curve == uninterrupted (bitwise)"
else bad "resumed loss curve differs"; diff <(cols "$W/a.gguf.csv") <(cols "$W/b.gguf.csv") | head; fi
cmp -s "$W/a.gguf" "$W/b.gguf" && ok "resumed model == uninterrupted (bitwise)" || bad "resumed model differs"

# SIGINT: the step finishes, the checkpoint is written, exit 130; then resume
"$T2" train $SHAPE $OPTS -n 100000 -o "$W/c.gguf" --ckpt "$W/c.ckpt" 2>"$W/c1.err" &
pid=$!
for _ in $(seq 200); do [ -f "$W/c.gguf.csv" ] && [ "$(wc -l < "$W/c.gguf.csv")" -ge 4 ] && break; sleep 0.05; done
kill -INT $pid
wait $pid; rc=$?
[ $rc = 130 ] && [ -f "$W/c.ckpt" ] && ok "SIGINT: exit 130 with a checkpoint" || { cat "$W/c1.err"; bad "SIGINT (exit $rc)"; }
n=$(($(wc -l < "$W/c.gguf.csv") - 1))
"$T2" train $SHAPE $OPTS -n 100000 -o "$W/c.gguf" --ckpt "$W/c.ckpt" --resume --stop-after 3 2>"$W/c2.err" || { cat "$W/c2.err"; bad "resume after SIGINT"; }
"$T2" train $SHAPE $OPTS -n 100000 -o "$W/d.gguf" --stop-after $((n + 3)) 2>"$W/d.err" || bad "uninterrupted run"
if cmp -s <(cols "$W/c.gguf.csv") <(cols "$W/d.gguf.csv"); then ok "resume after SIGINT at step $n == uninterrupted"
else bad "resume after SIGINT differs"; diff <(cols "$W/c.gguf.csv") <(cols "$W/d.gguf.csv") | head; fi

# errors
expect_err() { # expect_err PATTERN ARGS...: non-zero exit and PATTERN in stderr
    local pat="$1"; shift
    if "$T2" train "$@" >/dev/null 2>"$W/e.err"; then bad "accepted: $*"
    elif grep -q -- "$pat" "$W/e.err"; then ok "error: $pat"
    else bad "error for $* lacks '$pat': $(cat "$W/e.err")"; fi
}
expect_err "no training text" $SHAPE -o "$W/x.gguf"
expect_err "cannot open" $SHAPE -f "$W/missing.txt" -o "$W/x.gguf"
expect_err "needs --ckpt" $SHAPE $OPTS -o "$W/x.gguf" --resume
expect_err "exclude each other" -m "$W/a.gguf" --dim 8 $OPTS -o "$W/x.gguf"
expect_err "exceeds the model's context" $SHAPE -f "$W/data.txt" -T 64 -o "$W/x.gguf"
expect_err "another shape" --dim 16 --hidden 40 --layers 2 --heads 4 --ctx 32 $OPTS -o "$W/x.gguf" --ckpt "$W/b.ckpt" --resume
expect_err "at least 259" $SHAPE --vocab 100 $OPTS -o "$W/x.gguf"
printf 'hi\n' > "$W/short.txt"
expect_err "too few" $SHAPE -f "$W/short.txt" -o "$W/x.gguf"
exit $fail
