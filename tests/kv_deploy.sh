#!/bin/bash
# kv_deploy.sh - bad input for the paged KV cache of the workers (stories260K, context 512):
#   - a memory plan that cannot fit (worker.memory_mib too small): the group refuses to start,
#     naming weights, KV pool and scratch;
#   - worker.kv_pool_tokens below one context, an unknown kv_type: refused with the setting;
#   - a pool of one context and 4 long requests at once: they wait for room in turn, all 4
#     answer (nothing lost), each as `t2 run` answers it; the group logs its memory plan;
#   - a prompt longer than the context: a clear error with the numbers, the group lives on.
set -u
BIN="${T2_BIN:-/work/main/build/bin}"
HERE="$(cd "$(dirname "$0")" && pwd)"
A="${T2_ASSETS:-$HERE/../../shared/assets}/models"
[ -f "$A/stories260K.bin" ] && [ -f "$A/tok512.bin" ] || { echo "SKIP: no stories260K in $A"; exit 77; }
command -v mpirun > /dev/null || { echo "SKIP: no mpirun"; exit 77; }
if [ "$(id -u)" = 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
W="$(mktemp -d /tmp/t2_kv_deploy.XXXXXX)"
L="$HERE/../deploy/t2-local.sh"
pass=0 fail=0
ok() { if [ "$1" = 0 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "check failed: $2" >&2; fi; }
cleanup() { "$L" stop -c "$W/t2.cfg" --bin "$BIN" --run "$W/run" > /dev/null 2>&1; }
trap cleanup EXIT
( sleep 150; cleanup; kill -9 $$ ) > /dev/null 2>&1 & WD=$!  # no pipe held: ctest does not wait for it
port=$(( 20000 + RANDOM % 20000 ))
cfg() { # worker settings
    cat > "$W/t2.cfg" <<CFG
version = 1;
router = { bind = "tcp://127.0.0.1:$port"; endpoint = "tcp://127.0.0.1:$port"; heartbeat_ms = 200; };
model = { path = "$A/stories260K.bin"; tokenizer = "$A/tok512.bin"; context = 512; };
worker = { capacity = 4; $1 };
groups = ( { name = "a"; ranks = 2; } );
CFG
}
worker() { timeout 30 mpirun --oversubscribe --bind-to none --mca btl_tcp_if_include lo -np 1 "$BIN/t2-worker" -c "$W/t2.cfg" > "$W/w.out" 2>&1; }

cfg 'memory_mib = 1;'
worker; rc=$?
[ $rc != 0 ] && [ $rc != 124 ] && grep -q "memory plan of rank 0: weights .* MiB + KV pool .* MiB + scratch .* do not fit in 1 MiB" "$W/w.out"
ok $? "a plan over memory_mib is refused with its numbers (exit $rc): $(grep -m1 plan "$W/w.out")"

cfg 'kv_pool_tokens = 100;'
worker; rc=$?
[ $rc != 0 ] && [ $rc != 124 ] && grep -q "worker.kv_pool_tokens 100 is less than one context (model.context 512" "$W/w.out"
ok $? "a pool below one context is refused (exit $rc): $(grep -m1 kv_pool "$W/w.out")"

cfg 'kv_type = "q4_0";'
"$BIN/t2-config" check "$W/t2.cfg" > "$W/c.out" 2>&1; rc=$?
[ $rc != 0 ] && grep -q "worker.kv_type.*q4_0" "$W/c.out"; ok $? "kv_type q4_0 refused: $(cat "$W/c.out")"

# one context of pool (512 tokens = 8 blocks), 4 slots: requests of ~450 tokens take turns
cfg 'kv_pool_tokens = 512; kv_type = "f16"; max_tokens = 400;'
"$L" start -c "$W/t2.cfg" --bin "$BIN" --run "$W/run" > "$W/start" 2>&1; ok $? "start: $(cat "$W/start")"
grep -q "memory plan, rank 0: weights .* KV pool .*f16, 512 tokens in 8 blocks of 64" "$W/run/a.log"
ok $? "the group prints its memory plan"
p="Once upon a time, there was a little girl named Lily"
"$BIN/t2" submit -c "$W/t2.cfg" --adapt none -q -t 0 -n 400 --parallel 4 --json \
    "$p" "$p" "$p" "$p" > "$W/answers" 2> "$W/submit.err"
ok $? "4 long requests on a pool of one: $(tail -2 "$W/submit.err")"
n=$(grep -c '"text"' "$W/answers"); [ "$n" = 4 ]; ok $? "4 answers, got $n"
want=$("$BIN/t2" run -m "$A/stories260K.bin" -z "$A/tok512.bin" -t 0 -n 512 -c 512 -p "$p" 2> /dev/null)
/usr/bin/python3 - "$W/answers" "$want" "$p" <<'PY'
import json, sys
texts = [json.loads(l).get("text", "") for l in open(sys.argv[1]) if l.strip()]
want, p = sys.argv[2], sys.argv[3]
bad = [t for t in texts if p + t != want[:len(p + t)] or len(t) < 100]
sys.exit(1 if bad or len(texts) != 4 else 0)
PY
ok $? "each answer is t2 run's"
long=$(printf 'Lily and Tom played in the park. %.0s' $(seq 1 120))
"$BIN/t2" submit -c "$W/t2.cfg" --adapt none -q -t 0 -n 5 "$long" > /dev/null 2> "$W/long.err"; rc=$?
[ $rc != 0 ] && grep -q "context of 512 tokens" "$W/long.err"; ok $? "an over-long prompt: $(head -c 300 "$W/long.err")"
got=$("$BIN/t2" submit -c "$W/t2.cfg" --adapt none -q -t 0 -n 5 "$p" 2>&1); ok $? "the group still answers: $got"
"$L" stop -c "$W/t2.cfg" --bin "$BIN" --run "$W/run" > /dev/null 2>&1; ok $? "stop"
kill "$WD" 2> /dev/null; pkill -P "$WD" 2> /dev/null
echo "$pass passed, $fail failed"
[ $fail = 0 ] && rm -rf "$W"
[ $fail = 0 ]
