#!/usr/bin/env bash
# `t2 chat` and `t2 run --chat` through the CLI: --render-only output (exact bytes, no newline
# added), bad templates / conversations / flags (non-zero exit, one line naming the file and the
# problem), and, with the shared stories260K model, `t2 run --chat` and a two-turn interactive
# chat that keeps the history.
set -u
BIN=${T2_BIN:-build/bin}
A=${T2_ASSETS:-../shared/assets}/models
. "$(dirname "$0")/expect.sh"
T2="$BIN/t2"

expect_out() { # NAME EXPECTED CMD...: stdout must be exactly EXPECTED
    local name=$1 want=$2; shift 2
    "$@" > "$tmp/out" 2> "$tmp/err"; local rc=$?
    if [ $rc -eq 0 ] && [ "$(cat "$tmp/out"; printf x)" = "${want}x" ]; then
        echo "ok   $name"; pass=$((pass+1))
    else
        echo "FAIL $name (exit $rc): got [$(cat "$tmp/out")] want [$want]"; head -3 "$tmp/err"
        fail=$((fail+1))
    fi
}

nl=$'\n'
want="<|im_start|>system${nl}Be brief.<|im_end|>${nl}<|im_start|>user${nl}Hi ☕<|im_end|>${nl}"
expect_out "named chatml, messages from flags" "${want}<|im_start|>assistant${nl}" \
    "$T2" chat --render-only --chat-template chatml --system "Be brief." --user "Hi ☕"
expect_out "no generation prompt, assistant last" \
    "<|im_start|>user${nl}a<|im_end|>${nl}<|im_start|>assistant${nl}b<|im_end|>${nl}" \
    "$T2" chat --render-only --chat-template chatml --user a --assistant b --no-generation-prompt
printf '%s' "{{ bos_token }}{% for m in messages %}[{{ m.role }}|{{ m.content | trim }}]" \
    "{% endfor %}{{ strftime_now('%Y/%m/%d') }}" > "$tmp/t.jinja"
printf '%s' '{"messages": [{"role": "user", "content": "  x  "}]}' > "$tmp/c.json"
expect_out "template file, --messages, --bos, --date" "<s>[user|x]2025/02/03" \
    "$T2" chat --render-only --chat-template "$tmp/t.jinja" --messages "$tmp/c.json" \
    --bos "<s>" --date 2025-02-03

printf '%s' "{% for m in messages %}{{ m.content }}" > "$tmp/open.jinja"
expect_fail "unclosed block" "open.jinja: line 1: unexpected end of template.*endfor" \
    "$T2" chat --render-only --chat-template "$tmp/open.jinja" --user hi
printf '%s' "{{ raise_exception('Only user and assistant roles') }}" > "$tmp/raise.jinja"
expect_fail "template raises" "raise.jinja: line 1: raise_exception: Only user and assistant" \
    "$T2" chat --render-only --chat-template "$tmp/raise.jinja" --user hi
printf '%s' '{"messages": [' > "$tmp/bad.json"
expect_fail "bad conversation JSON" "bad.json: conversation: line 1" \
    "$T2" chat --render-only --chat-template chatml --messages "$tmp/bad.json"
expect_fail "missing conversation" "nope.json" \
    "$T2" chat --render-only --chat-template chatml --messages "$tmp/nope.json"
expect_fail "unknown template name" "no chat template named 'nope'" \
    "$T2" chat --render-only --chat-template nope --user hi
expect_fail "tokenizer_config without template" "no \"chat_template\" string" \
    "$T2" chat --render-only --chat-template "$tmp/c.json" --user hi
expect_fail "bad date" "--date: 'yesterday'" \
    "$T2" chat --render-only --chat-template chatml --date yesterday
expect_fail "no template" "needs --chat-template" "$T2" chat --render-only --user hi
expect_fail "both message sources" "not both" \
    "$T2" chat --render-only --chat-template chatml --messages "$tmp/c.json" --user hi

if [ -f "$A/stories260K.bin" ] && [ -f "$A/tok512.bin" ]; then
    m=(-m "$A/stories260K.bin" -z "$A/tok512.bin")
    "$T2" run "${m[@]}" -p "Once upon a time" --chat=chatml -n 100 -t 0 > "$tmp/out" 2> "$tmp/err"
    if [ $? -eq 0 ] && head -1 "$tmp/out" | grep -qx '<|im_start|>user'; then
        echo "ok   run --chat"; pass=$((pass+1))
    else
        echo "FAIL run --chat"; cat "$tmp/out" "$tmp/err" | head -5; fail=$((fail+1))
    fi
    expect_fail "run --chat, model without template" "no tokenizer.chat_template in the model" \
        "$T2" run "${m[@]}" -p hi --chat
    printf 'Tell me a story\nAnother one\n' | "$T2" chat "${m[@]}" --chat-template chatml \
        -n 400 -t 0 > "$tmp/out" 2> "$tmp/err"
    if [ $? -eq 0 ] && [ "$(grep -o '> ' "$tmp/out" | wc -l)" -ge 3 ] && [ -s "$tmp/out" ]; then
        echo "ok   interactive chat, two turns"; pass=$((pass+1))
    else
        echo "FAIL interactive chat"; cat "$tmp/out" "$tmp/err" | head -5; fail=$((fail+1))
    fi
else
    echo "note: $A/stories260K.bin absent: model tests not run"
fi
if [ -f "$A/llama-2-tiny-random.gguf" ]; then
    printf '%s' "{{ bos_token }}[{{ eos_token }}]{{ messages[0].content }}" > "$tmp/b.jinja"
    expect_out "template file with -m GGUF: bos/eos from its tokenizer" "<s>[</s>]hi" \
        "$T2" chat --render-only -m "$A/llama-2-tiny-random.gguf" --chat-template "$tmp/b.jinja" \
        --user hi
    expect_fail "GGUF without tokenizer.chat_template" "no tokenizer.chat_template" \
        "$T2" chat --render-only -m "$A/llama-2-tiny-random.gguf" --user hi
    # the same model with a tokenizer.chat_template: the template comes from the GGUF
    tmpl="{{ bos_token }}{% for m in messages %}[INST] {{ m.content }} [/INST]{% endfor %}"
    if /usr/bin/python3 "$(dirname "$0")/gguf_set_str.py" "$A/llama-2-tiny-random.gguf" \
        "$tmp/t.gguf" tokenizer.chat_template "$tmpl" 2> "$tmp/err"; then
        expect_out "template from the GGUF" "<s>[INST] a [/INST][INST] b [/INST]" \
            "$T2" chat --render-only -m "$tmp/t.gguf" --user a --user b
        expect_out "--chat-template overrides the GGUF's" "<|im_start|>user${nl}a<|im_end|>${nl}" \
            "$T2" chat --render-only -m "$tmp/t.gguf" --chat-template chatml --user a \
            --no-generation-prompt
        "$T2" run -m "$tmp/t.gguf" -p "Hi" --chat -n 24 -t 0 > "$tmp/out" 2> "$tmp/err"
        if [ $? -eq 0 ] && grep -q '^\[INST\] Hi \[/INST\]' "$tmp/out"; then
            echo "ok   run --chat with the GGUF's template"; pass=$((pass+1))
        else
            echo "FAIL run --chat with the GGUF's template"; cat "$tmp/out" "$tmp/err" | head -3
            fail=$((fail+1))
        fi
    else
        echo "note: could not add a chat template to the GGUF: $(cat "$tmp/err")"
    fi
fi
expect_end
