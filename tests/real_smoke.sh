#!/bin/bash
# real_smoke.sh - the issue-6 commands on a real data set and a real model: GSM8K with the
# llama2.c stories260K (accuracy about 0: the point is that every command runs and ends
# cleanly). Experts for stories260K are trained here for 2 steps each by t2 svf (gsm8k for
# "math", classify for the classifier expert); then t2 eval with every strategy, t2 adapt
# (CEM) and the profile it writes. Skipped (77) without the assets.
set -u
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" # Open MPI's own leaks
BIN=${T2_BIN:-build/bin}
HERE="$(cd "$(dirname "$0")" && pwd)"
A=${T2_ASSETS:-$HERE/../../shared/assets}
[ -f "$A/models/stories260K.bin" ] && [ -f "$A/data/gsm8k/test.jsonl" ] || { echo "no assets: skipped"; exit 77; }
export T2_ASSETS=$A
. "$HERE/expect.sh"
T2="$BIN/t2"
M=(-m "$A/models/stories260K.bin" -z "$A/models/tok512.bin")
ok() { echo "ok   $1"; pass=$((pass+1)); }
bad() { echo "FAIL $1"; fail=$((fail+1)); }
check() { # NAME CMD...: exits 0
    local name=$1; shift
    if "$@" > "$tmp/out" 2> "$tmp/err"; then ok "$name"; else bad "$name (exit $?)"; tail -5 "$tmp/err"; fi
}
run "$T2" decompose -m "$A/models/stories260K.bin" -o "$tmp/f.gguf"
check "t2 svf --task gsm8k" "$T2" svf --task gsm8k "${M[@]}" --factors "$tmp/f.gguf" -n 2 -b 2 \
    --val-n 2 --max-tokens 24 -j 1 -o "$tmp/math.gguf"
check "t2 svf --task classify" "$T2" svf --task classify "${M[@]}" --factors "$tmp/f.gguf" -n 2 \
    -b 2 --val-n 2 -j 1 -o "$tmp/classify.gguf"
for e in code mc; do run "$T2" expert init -m "$A/models/stories260K.bin" --factors "$tmp/f.gguf" -o "$tmp/$e.gguf" --name "$e"; done
check "t2 adapt --task gsm8k" "$T2" adapt --task gsm8k "${M[@]}" --factors "$tmp/f.gguf" --shots 2 \
    --pop 4 --iters 1 --max-tokens 24 -j 1 -o "$tmp/gsm8k.profile.gguf"
for s in none prompt classifier "profile:$tmp/gsm8k.profile.gguf"; do
    check "t2 eval --strategy ${s%%:*} on gsm8k" "$T2" eval "${M[@]}" --factors "$tmp/f.gguf" \
        --task gsm8k --n 3 --max-tokens 24 --strategy "$s" -j 1
    grep -q "^summary: .*pass2_s=" "$tmp/out" || bad "summary line of ${s%%:*}"
done
expect_end
