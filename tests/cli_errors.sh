#!/usr/bin/env bash
# Bad files and bad flags through the CLI: each must exit non-zero with one clear line that names
# the file (or flag) and the problem, and must not crash (a sanitizer build makes any memory
# error fatal here too).
set -u
BIN=${T2_BIN:-build/bin}
A=${T2_ASSETS:-../shared/assets}/models
. "$(dirname "$0")/expect.sh"

T2="$BIN/t2"
# a small valid model to corrupt
"$T2" init -o "$tmp/m.gguf" --dim 16 --hidden 24 --layers 2 --heads 4 --kv-heads 2 --vocab 32 --seq-len 64 2>/dev/null
: > "$tmp/empty"
printf 'hello world, not a model at all' > "$tmp/text.bin"
head -c 1000 "$tmp/m.gguf" > "$tmp/trunc.gguf"

expect_fail "missing model" "nope.gguf: cannot open" "$T2" run -m "$tmp/nope.gguf"
expect_fail "empty model" "empty: .*(not a model|too small)" "$T2" run -m "$tmp/empty"
expect_fail "text file as model" "text.bin: " "$T2" run -m "$tmp/text.bin"
expect_fail "truncated GGUF" "trunc.gguf: .*(past end|truncated|out of bounds)" "$T2" run -m "$tmp/trunc.gguf"
expect_fail "directory as model" "not a regular file" "$T2" run -m "$tmp"
expect_fail "GGUF without tokenizer" "no tokenizer" "$T2" run -m "$tmp/m.gguf"

if [ -f "$A/stories260K.bin" ] && [ -f "$A/tok512.bin" ]; then
    s="$A/stories260K.bin"
    head -c 100000 "$s" > "$tmp/trunc.bin"
    expect_fail "truncated llama2.c checkpoint" "trunc.bin: file is 100000 bytes but its llama2.c header" "$T2" run -m "$tmp/trunc.bin" -z "$A/tok512.bin"
    { cat "$s"; printf 'xxxx'; } > "$tmp/long.bin"
    expect_fail "llama2.c checkpoint with trailing bytes" "long.bin: file is .* implies" "$T2" run -m "$tmp/long.bin" -z "$A/tok512.bin"
    # header with n_heads = 7 (does not divide dim 64)
    { head -c 12 "$s"; printf '\x07\x00\x00\x00'; tail -c +17 "$s"; } > "$tmp/heads.bin"
    expect_fail "inconsistent llama2.c header" "heads.bin: .*n_heads 7" "$T2" run -m "$tmp/heads.bin" -z "$A/tok512.bin"
    # dim = 2^31-1 (overflowing sizes)
    { printf '\xff\xff\xff\x7f'; tail -c +5 "$s"; } > "$tmp/huge.bin"
    expect_fail "huge llama2.c dim" "huge.bin: .*dim" "$T2" run -m "$tmp/huge.bin" -z "$A/tok512.bin"
    # version-2 (int8) header
    { printf '\x32\x34\x6b\x61\x02\x00\x00\x00'; head -c 300 /dev/zero; } > "$tmp/v2.bin"
    expect_fail "llama2.c version 2" "v2.bin: llama2.c checkpoint version 2 is not supported" "$T2" run -m "$tmp/v2.bin"
    head -c 2000 "$A/tok512.bin" > "$tmp/tok.bin"
    expect_fail "truncated tokenizer file" "tok.bin: .*truncated" "$T2" run -m "$s" -z "$tmp/tok.bin" -n 5
    if [ -f "$A/tokenizer.bin" ]; then
        expect_fail "tokenizer of another vocabulary" "tokenizer.bin: .*(more tokens|vocabulary|512)" "$T2" run -m "$s" -z "$A/tokenizer.bin" -n 5
    fi
    expect_fail "-n not a number" "-n: 'abc' is not an integer" "$T2" run -m "$s" -z "$A/tok512.bin" -n abc
    expect_fail "--top-p out of range" "--top-p: 2 is out of range" "$T2" run -m "$s" -z "$A/tok512.bin" --top-p 2
    expect_fail "negative temperature" "-t: -1 is out of range" "$T2" run -m "$s" -z "$A/tok512.bin" -t -1
    expect_fail "prompt longer than steps" "prompt" "$T2" run -m "$s" -z "$A/tok512.bin" -n 3 -p "a long prompt that needs more than three tokens"
else
    echo "SKIP: llama2.c cases (assets not found)"
fi
expect_fail "unknown command" "unknown command 'frobnicate'" "$T2" frobnicate
expect_fail "init with heads not dividing dim" "n_heads 5 must be positive and divide dim 16" "$T2" init -o "$tmp/x.gguf" --dim 16 --hidden 8 --layers 1 --heads 5 --vocab 8
expect_fail "logits with a token out of range" "bad token id" "$T2" logits -m "$tmp/m.gguf" --tokens 1,2,99 -o "$tmp/l.f32"
expect_fail "convert to a type T2 reads but does not write" "does not write Q5_K" "$T2" convert "$tmp/m.gguf" "$tmp/q.gguf" --type q5_k

expect_end
