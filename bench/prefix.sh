#!/bin/bash
# prefix.sh - prefix reuse in a deployment (worker.prefix_cache): time to first token of a
# request whose ~1,000-token system prompt is cached against the request that ran it first.
#
#   bench/prefix.sh [BUILD_DIR] [ROUNDS] [OUT_DIR]     (defaults: build, 3, /tmp/t2-prefix)
#
# A random model made with t2 init (T2_BIG=1: the 134 M shape 768 / 2048 / 12 layers with the
# llama2 vocabulary of the shared assets; else the 25 M shape 512 / 1376 / 8 layers with tok512),
# context 2048, one group of 1 rank, 2 threads. Each round makes a new system prompt (so its
# first request misses the cache) and sends, one after the other, FIRST = system + question 1
# and SECOND = system + question 2, greedy, 4 new tokens; the time to first token of each is
# `t2 submit --json`'s ttft_ms. The same rounds run with prefix_cache = true and = false: the
# ratio SECOND / FIRST per round and its median -> OUT_DIR/prefix.csv and a table on stdout.
# Timings on a shared machine are noisy: read the ratios within one run. heartbeat_ms is 60 s
# because a long prefill sends no heartbeat (issue 15): on a loaded machine the router would
# take the group for dead and requeue the job, and the time to first token would count that.
set -euo pipefail
B=$(cd "${1:-build}" && pwd)/bin
ROUNDS=${2:-3}
OUT=${3:-/tmp/t2-prefix}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
A=${T2_ASSETS:-$ROOT/../shared/assets}/models
L=$ROOT/deploy/t2-local.sh
mkdir -p "$OUT"
if [ "${T2_BIG:-0}" = 1 ]; then
    M=$OUT/m134.gguf Z=$A/tokenizer.bin NW=950
    shape=(--dim 768 --hidden 2048 --layers 12 --heads 12 --vocab 32000)
else
    M=$OUT/m25.gguf Z=$A/tok512.bin NW=380
    shape=(--dim 512 --hidden 1376 --layers 8 --heads 8 --vocab 512)
fi
[ -f "$M" ] || "$B/t2" init -o "$M" "${shape[@]}" --seq-len 2048 -z "$Z" > /dev/null
port=$(( 20000 + RANDOM % 20000 ))
trap '"$L" stop -c "$OUT/t2.cfg" --bin "$B" --run "$OUT/run" > /dev/null 2>&1' EXIT
words=(Lily Tom Max the ball park river sun warm birds sing tall green trees happy gentle
       story ends well friends day share toys run jump bark ducks water rain home milk books
       mom stars moon little big red kind small children simple words every night)
system() { # a system prompt of about 1,000 tokens, different for each round
    local i out="Round $1. System: you tell stories."
    for ((i = 0; i < NW; i++)); do out+=" ${words[(i * 7 + i / 5 + $1 * 3) % ${#words[@]}]}"; done
    echo "$out."
}
echo "mode,round,first_ms,second_ms,ratio,first_prompt_tokens" > "$OUT/prefix.csv"
for mode in true false; do
    cat > "$OUT/t2.cfg" <<CFG
version = 1;
router = { bind = "tcp://127.0.0.1:$port"; endpoint = "tcp://127.0.0.1:$port"; heartbeat_ms = 60000; };
model = { path = "$M"; tokenizer = "$Z"; context = 2048; };
worker = { capacity = 2; threads = 2; prefix_cache = $mode; log_level = "warn"; };
groups = ( { name = "a"; ranks = 1; } );
CFG
    "$L" start -c "$OUT/t2.cfg" --bin "$B" --run "$OUT/run" > /dev/null
    for ((r = 1; r <= ROUNDS; r++)); do
        off=0; [ $mode = true ] || off=100
        s=$(system $((r + off)))
        for q in "Tell me about Lily." "What did Max do?"; do
            "$B/t2" submit -c "$OUT/t2.cfg" --adapt none -q -t 0 -n 4 --json "$s $q"
        done > "$OUT/r.json"
        /usr/bin/python3 - "$OUT/r.json" "$mode" "$r" >> "$OUT/prefix.csv" <<'PY'
import json, sys
a, b = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print(f"{sys.argv[2]},{sys.argv[3]},{a['ttft_ms']:.1f},{b['ttft_ms']:.1f},"
      f"{b['ttft_ms'] / a['ttft_ms']:.3f},{a['prompt_tokens']}")
PY
    done
    "$L" stop -c "$OUT/t2.cfg" --bin "$B" --run "$OUT/run" > /dev/null
done
/usr/bin/python3 - "$OUT/prefix.csv" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
print("| prefix_cache | prompt tokens | first TTFT ms | second TTFT ms | second / first |")
print("|---|---|---|---|---|")
for mode in ("true", "false"):
    m = [r for r in rows if r["mode"] == mode]
    med = lambda k: statistics.median(float(r[k]) for r in m)
    print(f"| {mode} | {m[0]['first_prompt_tokens']} | {med('first_ms'):.0f} | "
          f"{med('second_ms'):.0f} | {med('ratio'):.3f} (rounds: "
          + ", ".join(r["ratio"] for r in m) + ") |")
PY
