#!/usr/bin/env bash
# `t2 tokenize`: the SentencePiece kind gives tok_encode's ids; -f takes a file's bytes exactly
# (trailing newlines, NUL) and agrees with the text argument; bad input fails with one line.
# (bpe_parity.py checks the byte-level kind's ids against a reference, through this command too.)
set -u
BIN=${T2_BIN:-build/bin}
S=${T2_ASSETS:-../shared/assets}
. "$(dirname "$0")/expect.sh"
T2="$BIN/t2"

same() { # NAME GOT WANT
    if [ "$2" = "$3" ] && [ -n "$3" ]; then echo "ok   $1: $2"; pass=$((pass+1))
    else echo "FAIL $1: got '$2', want '$3'"; fail=$((fail+1)); fi
}

if [ -f "$S/models/stories260K.bin" ] && [ -f "$S/models/tok512.bin" ]; then
    m=(-m "$S/models/stories260K.bin" -z "$S/models/tok512.bin")
    same "SentencePiece kind = tok_encode" "$("$T2" tokenize "${m[@]}" 'Once upon a time')" \
        "$(printf 'Once upon a time\n' | "$BIN/tok_encode" "$S/models/tok512.bin" 512)"
    same "--bos" "$("$T2" tokenize "${m[@]}" --bos 'Once' | cut -d' ' -f1)" "1"
    same "--lines" "$("$T2" tokenize "${m[@]}" --lines 'Once upon' | wc -l | tr -d ' ')" "2"
fi
J="$S/tokenizers/llama3/tokenizer.json"
if [ -f "$J" ]; then
    printf 'Hi there\n\n' > "$tmp/t.txt"
    same "-f keeps trailing newlines" "$("$T2" tokenize --tokenizer "$J" -f "$tmp/t.txt")" \
        "$("$T2" tokenize --tokenizer "$J" $'Hi there\n\n')"
    printf 'a\0b' > "$tmp/nul.txt"
    same "-f keeps NUL bytes" "$("$T2" tokenize --tokenizer "$J" -f "$tmp/nul.txt" | wc -w | tr -d ' ')" "3"
    same "--special" "$("$T2" tokenize --tokenizer "$J" --special '<|eot_id|>')" "128009"
    same "no --special" "$("$T2" tokenize --tokenizer "$J" '<|eot_id|>' | wc -w | tr -d ' ')" "7"
    same "--pieces" "$("$T2" tokenize --tokenizer "$J" --pieces $'Hi\n' | cut -f2 | tr '\n' '|')" \
        'Hi|\x0a|'
    same "empty text" "$("$T2" tokenize --tokenizer "$J" '' | wc -c | tr -d ' ')" "0"
fi

printf '{"model": {"type": "Unigram", "vocab": []}}' > "$tmp/uni.json"
expect_fail "Unigram tokenizer.json" "uni.json: model type 'Unigram' is not supported" \
    "$T2" tokenize --tokenizer "$tmp/uni.json" x
expect_fail "missing tokenizer.json" "nope.json: cannot open" \
    "$T2" tokenize --tokenizer "$tmp/nope.json" x
expect_fail "no tokenizer" "give exactly one of -m MODEL, --tokenizer" "$T2" tokenize x
expect_fail "text and -f" "exclusive" "$T2" tokenize --tokenizer "$tmp/uni.json" -f "$tmp/uni.json" x
expect_fail "missing -f file" "nope.txt" "$T2" tokenize --tokenizer "$tmp/uni.json" -f "$tmp/nope.txt"
expect_end
