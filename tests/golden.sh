#!/usr/bin/env bash
# Golden parity with llama2.c: greedy stories260K output must be byte-identical to the
# reference's (stdout; the reference prints the text plus one newline, the file has none).
# Then the same through `t2 convert` to GGUF (tokenizer embedded) and F16/BF16 sanity runs.
set -u
BIN=${T2_BIN:-build/bin}
A=${T2_ASSETS:-../shared/assets}/models
for f in stories260K.bin tok512.bin stories260K_greedy200_expected.txt; do
    [ -f "$A/$f" ] || { echo "SKIP: $A/$f not found"; exit 77; }
done
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
pass=0; fail=0
check() { # name, file with our stdout
    if cmp -s "$2" "$tmp/expected"; then echo "ok   $1"; pass=$((pass+1));
    else echo "FAIL $1"; diff <(fold -w 100 "$tmp/expected") <(fold -w 100 "$2") | head -20; fail=$((fail+1)); fi
}
{ cat "$A/stories260K_greedy200_expected.txt"; echo; } > "$tmp/expected"

for j in 1 2; do
    "$BIN/t2" run -m "$A/stories260K.bin" -z "$A/tok512.bin" -t 0 -n 200 -j $j > "$tmp/out" 2> "$tmp/err"
    echo "  exit $? ($(tail -1 "$tmp/err"))"
    check "llama2.c checkpoint, $j thread(s)" "$tmp/out"
done
# the default KV cache is F16; the F32 cache (the reference's) gives the same text
"$BIN/t2" run -m "$A/stories260K.bin" -z "$A/tok512.bin" -t 0 -n 200 --kv-type f32 > "$tmp/out" 2> "$tmp/err"
check "llama2.c checkpoint, F32 KV cache" "$tmp/out"
if "$BIN/t2" convert "$A/stories260K.bin" "$tmp/s.gguf" -z "$A/tok512.bin" 2> "$tmp/err"; then
    "$BIN/t2" run -m "$tmp/s.gguf" -t 0 -n 200 > "$tmp/out" 2> "$tmp/err"
    check "converted GGUF with embedded tokenizer" "$tmp/out"
    # a prompt given as a batch must continue exactly as the step-by-step reference does
    prompt=$(head -c 60 "$tmp/expected")
    "$BIN/t2" run -m "$tmp/s.gguf" -t 0 -n 200 -p "$prompt" > "$tmp/out" 2> "$tmp/err"
    check "prompt of 60 characters processed as a batch" "$tmp/out"
else
    echo "FAIL convert: $(cat "$tmp/err")"; fail=$((fail+1))
fi
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
