#!/bin/bash
# paper_tiny.sh - bench/paper.sh end to end at tiny size: a random-weight qwen2 model with Qwen's
# real vocabulary (t2 init -z tokenizer.json), 1 SVF step per expert on GSM8K / MBPP / ARC-Easy /
# classify, 2 items per evaluation, 8 tokens per answer. It must run, not score: every step ends
# with exit 0 and writes its file (experts, profiles, a summary line per table). Then --dry-run
# on a 1 B shape must print a plan with a time per step, and bad invocations must be refused.
# Skipped (77) without ../shared/assets (the data sets and the Qwen tokenizer).
set -u
BIN=${T2_BIN:-build/bin}
HERE="$(cd "$(dirname "$0")" && pwd)"
A=${T2_ASSETS:-$HERE/../../shared/assets}
TJ=$A/tokenizers/qwen3/tokenizer.json
[ -f "$TJ" ] && [ -d "$A/data/arc" ] && [ -d "$A/data/mbpp" ] || { echo "no assets: skipped"; exit 77; }
export T2_ASSETS=$A
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
bad() { echo "FAIL $*"; fail=1; }
"$BIN/t2" init --arch qwen2 -z "$TJ" -o "$tmp/q.gguf" --dim 32 --hidden 64 --layers 2 --heads 4 \
    --kv-heads 2 --vocab 151936 --seq-len 128 --seed 1 > /dev/null || { echo "FAIL t2 init"; exit 1; }
P="$HERE/../bench/paper.sh"
if ! "$P" --tiny --bin "$BIN" --out "$tmp/out" -j 1 "$tmp/q.gguf" > "$tmp/log" 2>&1; then
    bad "bench/paper.sh --tiny"; tail -20 "$tmp/log"
fi
for f in factors experts/math experts/code experts/mc experts/classify profile-humaneval \
    profile-arc-challenge; do
    [ -s "$tmp/out/$f.gguf" ] || bad "no $f.gguf"
done
n=0
for t in "$tmp"/out/table*.txt; do
    grep -q "^summary: " "$t" || bad "$(basename "$t"): no summary line"
    n=$((n + 1))
done
[ "$n" = 14 ] || bad "$n tables, want 14"
grep -q "^total ~" "$tmp/out/plan.txt" || bad "plan.txt: no total"
# the plan of a 1 B shape: one line per step with its time, nothing run
"$P" --dry-run --tiny --bin "$BIN" --out "$tmp/dry" --shape 2048,8192,16,128256 > "$tmp/plan" 2>&1 ||
    bad "--dry-run --shape"
[ "$(grep -v '^total' "$tmp/plan" | grep -cE '^[a-z0-9-]+ +~ *[0-9]+h[0-9]{2}m[0-9]{2}s ')" = 21 ] ||
    { bad "--dry-run: want 21 step lines with times"; cat "$tmp/plan"; }
grep -q "^model shape 2048,8192,16,128256: 1.6e+09 parameters" "$tmp/plan" || bad "parameter count"
[ ! -e "$tmp/dry/factors.gguf" ] || bad "--dry-run ran a step"
"$P" --steps x "$tmp/q.gguf" > /dev/null 2>&1; [ $? = 2 ] || bad "--steps x accepted"
"$P" "$tmp/nope.gguf" > /dev/null 2>&1; [ $? = 1 ] || bad "missing model accepted"
"$P" --shape 1,2,3,4 "$tmp/q.gguf" > /dev/null 2>&1; [ $? = 2 ] || bad "--shape without --dry-run"
[ $fail = 0 ] && echo "bench/paper.sh: tiny end-to-end run and dry-run plan ok"
exit $fail
