#!/bin/bash
# real_model_e2e.sh - Transformer² on the kind of model people download: a qwen2-architecture
# model with Qwen's real vocabulary and chat template (random weights in Hugging Face layout,
# tests/make_hf.py), converted by `t2 convert` to Q4_K; then
#   t2 decompose (from the dequantized weights), an expert applied merged and factored,
#   a few t2 svf steps, and chat requests through router + dispatcher + a 2-rank group whose
#   merged W' is stored as Q8_0 (worker.merged_type), byte-identical to `t2 run --chat` with the
#   same mixture and --merged-type q8_0 (and with the base weights).
set -u
BIN="${T2_BIN:-/work/main/build/bin}"
HERE="$(cd "$(dirname "$0")" && pwd)"
TOK="${T2_ASSETS:-$HERE/../../shared/assets}/tokenizers/qwen3"
PY=/usr/bin/python3
[ -f "$TOK/tokenizer.json" ] || { echo "SKIP: no Qwen vocabulary in $TOK"; exit 77; }
command -v mpirun > /dev/null || { echo "SKIP: no mpirun"; exit 77; }
$PY -c "import numpy" 2> /dev/null || { echo "SKIP: no numpy for $PY"; exit 77; }
if [ "$(id -u)" = 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
W="$(mktemp -d /tmp/t2_real_e2e.XXXXXX)"
L="$HERE/../deploy/t2-local.sh"
pass=0 fail=0
ok() { if [ "$1" = 0 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "check failed: $2" >&2; fi; }
cleanup() { "$L" stop -c "$W/t2.cfg" --bin "$BIN" --run "$W/run" > /dev/null 2>&1; pkill -9 -f "$W/" 2> /dev/null; }
trap cleanup EXIT
( sleep 280 & echo $! > "$W/.wd"; wait $!; echo "real_model_e2e: watchdog: over 280 s" >&2; cleanup
  kill -9 $$ ) > /dev/null 2>&1 & WD=$!

# the model: qwen2 (Q/K/V biases, rotation of halves), 2 layers of 256 (whole Q4_K blocks),
# Qwen's 151,669 tokens in an embedding of 151,680 rows (padded, as real Qwen checkpoints are)
$PY "$HERE/make_hf.py" "$W/hf" --arch qwen2 --dim 256 --hidden 512 --layers 2 --heads 4 \
    --kv-heads 2 --vocab 151680 --seq-len 512 --tied --seed 3 > /dev/null; ok $? "make_hf.py"
cp "$TOK/tokenizer.json" "$TOK/tokenizer_config.json" "$W/hf/"
out=$("$BIN/t2" convert "$W/hf" "$W/m.gguf" --type q4_k 2>&1); ok $? "t2 convert: $out"
[[ "$out" == *"qwen2"*"Q4_K"*"tokenizer embedded"* ]]; ok $? "converted as qwen2, Q4_K, with its tokenizer"
M="$W/m.gguf"
P="Hello there, who are you?"
# t2 init with the real vocabulary: a qwen3 model that chats with Qwen's template
"$BIN/t2" init -o "$W/i.gguf" --arch qwen3 --dim 64 --hidden 128 --layers 2 --heads 4 \
    --kv-heads 2 --vocab 151680 -z "$TOK/tokenizer.json" --type q8_0 > /dev/null 2>&1
ok $? "t2 init --arch qwen3 -z tokenizer.json"
out=$("$BIN/t2" run -m "$W/i.gguf" --chat -p "$P" -t 0 -n 30 2> /dev/null)
[[ "$out" == *"<|im_start|>assistant"* ]]; ok $? "the qwen3 model renders Qwen's template: $out"
out=$("$BIN/t2" init -o "$W/j.gguf" --dim 64 --hidden 128 --layers 1 --heads 4 --vocab 1000 \
      -z "$TOK/tokenizer.json" 2>&1); [ $? != 0 ] && [[ "$out" == *"more than the model's vocabulary of 1000"* ]]
ok $? "a vocabulary larger than the model's is refused: $out"

# SVF on the quantized model: factors, an expert, both application paths, a few training steps
mkdir -p "$W/ex"
out=$("$BIN/t2" decompose -m "$M" -o "$W/ex/factors.gguf" 2>&1); ok $? "decompose: $out"
"$BIN/t2" expert init -m "$M" --factors "$W/ex/factors.gguf" -o "$W/ex/e1.gguf" --name e1 \
    --noise 0.5 --seed 3 > /dev/null 2>&1; ok $? "expert init"
run() { "$BIN/t2" run -m "$M" --chat -p "$P" -t 0 "$@" 2> "$W/run.err"; }
base=$(run -n 40); ok $? "t2 run --chat: $(cat "$W/run.err")"
merged=$(run -n 40 --factors "$W/ex/factors.gguf" --mix e1=0.8 --apply merged); ok $? "merged"
factored=$(run -n 40 --factors "$W/ex/factors.gguf" --mix e1=0.8 --apply factored); ok $? "factored"
[ -n "$merged" ] && [ "$merged" != "$base" ]; ok $? "the expert changes the answer (merged)"
[ -n "$factored" ] && [ "$factored" != "$base" ]; ok $? "the expert changes the answer (factored)"
out=$("$BIN/t2" svf --task math -m "$M" --factors "$W/ex/factors.gguf" -o "$W/ex/math.gguf" \
      -n 2 -b 4 --eval-every 1 --val 4 --max-tokens 8 -j 2 2>&1); ok $? "t2 svf: $(echo "$out" | tail -2)"
[ -s "$W/ex/math.gguf" ]; ok $? "t2 svf wrote an expert"

# the deployment: chat requests, rendered by the worker, as t2 run --chat renders them
cat > "$W/t2.cfg" <<CFG
version = 1;
router = { bind = "ipc://$W/r.ipc"; endpoint = "ipc://$W/r.ipc"; };
model = { path = "$M"; factors = "$W/ex/factors.gguf"; };
worker = { capacity = 4; merged_type = "q8_0"; };
dispatcher = { labels = { code = ""; math = ""; reasoning = ""; other = ""; }; };
groups = ( { name = "a"; ranks = 2; } );
CFG
"$L" start -c "$W/t2.cfg" --bin "$BIN" --run "$W/run" > "$W/start" 2>&1; ok $? "start: $(cat "$W/start")"
for adapt in none mix:e1=0.8; do
    "$BIN/t2" submit -c "$W/t2.cfg" --chat --json -t 0 -n 16 --adapt "$adapt" "$P" > "$W/a.json" 2> "$W/a.err"
    ok $? "submit --chat --adapt $adapt: $(cat "$W/a.err")"
    got=$($PY -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["text"], end="")' "$W/a.json")
    np=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["prompt_tokens"])' "$W/a.json")
    mix=(); [ "$adapt" = none ] || mix=(--factors "$W/ex/factors.gguf" --mix e1=0.8 --merged-type q8_0)
    want=$(run -n $((np + 16 - 1)) "${mix[@]}")
    want=${want#*"<|im_start|>assistant"$'\n'} # t2 run echoes the rendered prompt first
    [ -n "$got" ] && [ "$got" = "$want" ]; ok $? "--adapt $adapt: the deployment's '$got' is t2 run --chat's '$want'"
done
grep -q "no chat template" "$W/run/a.log"; [ $? != 0 ]; ok $? "the worker found the model's chat template"
grep -q "apply merged (W' q8_0)" "$W/run/a.log"; ok $? "the worker stores merged W' as Q8_0"
"$L" stop -c "$W/t2.cfg" --bin "$BIN" --run "$W/run" > /dev/null 2>&1; ok $? "stop"

kill "$WD" 2> /dev/null; kill "$(cat "$W/.wd")" 2> /dev/null
echo "$pass passed, $fail failed"
[ $fail = 0 ] && rm -rf "$W"
[ $fail = 0 ]
