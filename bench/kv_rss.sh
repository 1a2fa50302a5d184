#!/bin/bash
# kv_rss.sh - peak RSS of `t2 run` against the tokens in the KV cache: the 134 M shape with F16
# weights and a context of 8,192 (t2-bench-kv writes it), prompts of 0 to 8,000 words of a
# Llama-2 vocabulary (one token each), 2 new tokens. The KV pool's blocks are touched only as a
# sequence grows, so RSS should rise by about the F16 cache's bytes per token (12 layers x K and
# V x 768 x 2 bytes = 36.9 KB) and not start at the context's full size.
#   bench/kv_rss.sh [BUILD_BIN] [MODELS_DIR]     (default build/bin, /tmp/t2-bench-models)
set -euo pipefail
BIN=${1:-build/bin}
DIR=${2:-/tmp/t2-bench-models}
ASSETS=${T2_ASSETS:-$(dirname "$0")/../../shared/assets}
TOK=$ASSETS/models/tokenizer.bin
M=$DIR/bench134m_8k_f16.gguf
[ -f "$TOK" ] || { echo "kv_rss: $TOK not found (set T2_ASSETS)" >&2; exit 1; }
[ -f "$M" ] || "$BIN/t2-bench-kv" --models "$DIR" --kv f16 --prompt 16 --gen 1 > /dev/null
echo "prompt_tokens,max_rss_kb"
for w in 0 500 1000 2000 4000 6000 8000; do
    p=$(/usr/bin/python3 -c "import random; r = random.Random(1); \
w = 'the dog cat ran to a big park and sun was happy girl boy tree'.split(); \
print(' '.join(r.choice(w) for _ in range($w)) or 'the', end='')")
    out=$(/usr/bin/time -f "maxrss %M" "$BIN/t2" run -m "$M" -z "$TOK" -p "$p" -n $((w + 4)) \
          -c 8192 -t 0 --batch 512 2>&1 > /dev/null)
    n=$(grep -o 'prompt: [0-9]* tokens' <<< "$out" | grep -o '[0-9]*')
    echo "$n,$(grep -o 'maxrss [0-9]*' <<< "$out" | grep -o '[0-9]*')"
done
