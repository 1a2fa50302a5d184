#!/bin/bash
# gateway_chat.sh - greedy chat completions through t2-gateway are byte-identical to
# `t2 run --chat` with the same mixture (base weights, and an expert mixed in), whole and
# streamed. The model: a small qwen3 made by `t2 init` with Qwen's real vocabulary and chat
# template (random weights), its SVD factors and one random expert, deployed by
# deploy/t2-local.sh with a gateway section. (Completions: gateway_http.py checks them.)
set -u
BIN="${T2_BIN:-/work/main/build/bin}"
HERE="$(cd "$(dirname "$0")" && pwd)"
TOK="${T2_ASSETS:-$HERE/../../shared/assets}/tokenizers/qwen3"
PY=/usr/bin/python3
[ -f "$TOK/tokenizer.json" ] || { echo "SKIP: no Qwen vocabulary in $TOK"; exit 77; }
command -v mpirun > /dev/null || { echo "SKIP: no mpirun"; exit 77; }
command -v curl > /dev/null || { echo "SKIP: no curl"; exit 77; }
if [ "$(id -u)" = 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
W="$(mktemp -d /tmp/t2_gateway_chat.XXXXXX)"
L="$HERE/../deploy/t2-local.sh"
pass=0 fail=0
ok() { if [ "$1" = 0 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "check failed: $2" >&2; fi; }
cleanup() { "$L" stop -c "$W/t2.cfg" --bin "$BIN" --run "$W/run" > /dev/null 2>&1; }
trap cleanup EXIT
( sleep 200 & echo $! > "$W/.wd"; wait $!; echo "gateway_chat: watchdog: over 200 s" >&2; cleanup
  kill -9 $$ ) > /dev/null 2>&1 & WD=$!

M="$W/m.gguf"
"$BIN/t2" init -o "$M" --arch qwen3 --dim 64 --hidden 128 --layers 2 --heads 4 --kv-heads 2 \
    --vocab 151680 -z "$TOK/tokenizer.json" --seed 5 > "$W/init" 2>&1; ok $? "t2 init: $(cat "$W/init")"
mkdir -p "$W/ex"
"$BIN/t2" decompose -m "$M" -o "$W/ex/factors.gguf" > "$W/dec" 2>&1; ok $? "decompose: $(cat "$W/dec")"
"$BIN/t2" expert init -m "$M" --factors "$W/ex/factors.gguf" -o "$W/ex/e1.gguf" --name e1 \
    --noise 0.5 --seed 3 > "$W/exp" 2>&1; ok $? "expert init: $(cat "$W/exp")"
http=$(( 20000 + RANDOM % 20000 ))
cat > "$W/t2.cfg" <<CFG
version = 1;
router = { bind = "ipc://$W/r.ipc"; endpoint = "ipc://$W/r.ipc"; };
model = { path = "$M"; factors = "$W/ex/factors.gguf"; };
worker = { capacity = 4; };
dispatcher = { labels = { code = ""; math = ""; reasoning = ""; other = ""; }; };
groups = ( { name = "a"; ranks = 1; } );
gateway = { port = $http; };
CFG
"$L" start -c "$W/t2.cfg" --bin "$BIN" --run "$W/run" > "$W/start" 2>&1; ok $? "start: $(cat "$W/start")"
for i in $(seq 50); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$http/health")" = 200 ] && break
    sleep 0.2
done

P="Hello there, who are you?"
N=16
field() { $PY -c 'import json,sys; print(eval("json.load(sys.stdin)" + sys.argv[1]), end="")' "$1"; }
# the SSE stream's content deltas, joined
deltas() { $PY -c '
import json, sys
out = ""
for line in sys.stdin.read().split("\n"):
    if line.startswith("data: ") and line != "data: [DONE]":
        c = json.loads(line[6:])["choices"]
        if c and c[0]["delta"].get("content"):
            out += c[0]["delta"]["content"]
print(out, end="")'; }
for model in t2-base:none "t2-base:mix/e1=0.8"; do
    body=$($PY -c 'import json,sys; print(json.dumps({"model": sys.argv[1], "max_tokens": int(sys.argv[2]),
        "temperature": 0, "messages": [{"role": "user", "content": sys.argv[3]}]}))' "$model" $N "$P")
    curl -s "http://127.0.0.1:$http/v1/chat/completions" -H 'Content-Type: application/json' \
        -d "$body" > "$W/a.json"
    got=$(field '["choices"][0]["message"]["content"]' < "$W/a.json")
    np=$(field '["usage"]["prompt_tokens"]' < "$W/a.json")
    [ -n "$got" ] && [ -n "$np" ]; ok $? "$model: an answer: $(head -c 300 "$W/a.json")"
    mix=(); [ "$model" = t2-base:none ] || mix=(--factors "$W/ex/factors.gguf" --mix e1=0.8)
    want=$("$BIN/t2" run -m "$M" --chat -p "$P" -t 0 -n $((np + N - 1)) "${mix[@]}" 2> "$W/run.err")
    ok $? "t2 run --chat: $(cat "$W/run.err")"
    want=${want#*"<|im_start|>assistant"$'\n'} # t2 run echoes the rendered prompt first
    [ "$got" = "$want" ]; ok $? "$model: the gateway's '$got' is t2 run --chat's '$want'"
    [ "$model" = t2-base:none ] && base="$got"
    [ "$model" = t2-base:none ] || [ "$got" != "$base" ]; ok $? "$model: the expert changes the answer"
    streamed=$(curl -sN "http://127.0.0.1:$http/v1/chat/completions" \
        -H 'Content-Type: application/json' -d "${body%\}}, \"stream\": true}" | deltas)
    [ "$streamed" = "$want" ]; ok $? "$model: streamed '$streamed' is t2 run --chat's '$want'"
done
"$L" stop -c "$W/t2.cfg" --bin "$BIN" --run "$W/run" > /dev/null 2>&1; ok $? "stop"

kill "$WD" 2> /dev/null; kill "$(cat "$W/.wd")" 2> /dev/null
echo "$pass passed, $fail failed"
[ $fail = 0 ] && rm -rf "$W"
[ $fail = 0 ]
