#!/bin/bash
# prefix_deploy.sh - prefix reuse in a worker group (worker.prefix_cache; engine/kvcache.h), on
# stories260K (context 512) with SVD factors and two random experts, 2 ranks:
#   - requests sharing a long system prompt, one at a time, under base weights and the experts
#     math and code: each job maps exactly the cached blocks of earlier prompts run with the
#     same mixture (the head's debug line per job), never another mixture's;
#   - the same requests, 4 at once, and pass-1 classifications (scored) sharing a long prefix;
#   - every answer is byte-identical to the same group with worker.prefix_cache = false.
set -u
BIN="${T2_BIN:-/work/main/build/bin}"
HERE="$(cd "$(dirname "$0")" && pwd)"
A="${T2_ASSETS:-$HERE/../../shared/assets}/models"
[ -f "$A/stories260K.bin" ] && [ -f "$A/tok512.bin" ] || { echo "SKIP: no stories260K in $A"; exit 77; }
command -v mpirun > /dev/null || { echo "SKIP: no mpirun"; exit 77; }
if [ "$(id -u)" = 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
W="$(mktemp -d /tmp/t2_prefix_deploy.XXXXXX)"
L="$HERE/../deploy/t2-local.sh"
T2="$BIN/t2"
pass=0 fail=0
ok() { if [ "$1" = 0 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "check failed: $2" >&2; fi; }
cleanup() { "$L" stop -c "$W/t2.cfg" --bin "$BIN" --run "$W/run" > /dev/null 2>&1; }
trap cleanup EXIT
( sleep 170; cleanup; kill -9 $$ ) > /dev/null 2>&1 & WD=$!  # no pipe held: ctest does not wait for it
M="$A/stories260K.bin"
Z="$A/tok512.bin"
mkdir -p "$W/ex"
"$T2" decompose -m "$M" -o "$W/F.gguf" -j 1 > /dev/null 2> "$W/setup.err"; ok $? "decompose: $(cat "$W/setup.err")"
seed=5
for e in math code; do
    "$T2" expert init -m "$M" --factors "$W/F.gguf" -o "$W/ex/$e.gguf" --name $e --noise 0.5 \
        --seed $seed > /dev/null 2> "$W/setup.err"; ok $? "expert $e: $(cat "$W/setup.err")"
    seed=$((seed + 1))
done
port=$(( 20000 + RANDOM % 20000 ))
cfg() { # worker.prefix_cache
    cat > "$W/t2.cfg" <<CFG
version = 1;
router = { bind = "tcp://127.0.0.1:$port"; endpoint = "tcp://127.0.0.1:$port"; heartbeat_ms = 200; };
model = { path = "$M"; tokenizer = "$Z"; context = 512; factors = "$W/F.gguf"; experts_dir = "$W/ex"; };
worker = { capacity = 4; batch = 96; log_level = "debug"; prefix_cache = $1; };
groups = ( { name = "a"; ranks = 2; } );
CFG
}
sys="System: you are a kind storyteller. Tell short stories for small children about a little girl named Lily, her brother Tom, their dog Max and the big red ball they play with in the park near the river, where the sun is warm and the birds sing in the tall green trees. Use simple words. Be happy and gentle. Every story ends well and everyone is friends again at the end of the day. Lily likes to share her toys, Tom likes to run and jump, and Max likes to bark at the ducks on the water. When it rains they stay home, drink warm milk and look at picture books with their mom, who tells them about the stars and the moon. "
q1="Once upon a time, Lily"
q2="One day, Tom and Max found"
# OUT: answers of one deployment (prefix_cache $1) into $W/$1.*
serve() {
    cfg "$1"
    "$L" start -c "$W/t2.cfg" --bin "$BIN" --run "$W/run" > "$W/start" 2>&1; ok $? "start ($1): $(cat "$W/start")"
    local i=0 a
    for a in none:"$q1" none:"$q2" mix:math=1:"$q1" mix:math=1:"$q2" mix:code=0.7,math=0.3:"$q2" none:"$q1"; do
        "$T2" submit -c "$W/t2.cfg" --adapt "${a%%:"${a##*:}"}" -q -t 0 -n 24 --json "$sys${a##*:}" \
            > "$W/$1.one$i" 2> "$W/$1.err"; ok $? "request $i ($1): $(tail -2 "$W/$1.err")"
        i=$((i + 1))
    done
    "$T2" submit -c "$W/t2.cfg" --adapt mix:math=1 -q -t 0 -n 24 --parallel 4 --json \
        "$sys$q1 and" "$sys$q2 a" "$sys Lily" "$sys$q2 the" > "$W/$1.burst" 2> "$W/$1.err"
    ok $? "4 at once ($1): $(tail -2 "$W/$1.err")"
    "$T2" submit -c "$W/t2.cfg" --service classify -q --json "$sys What is 2 + 3?" \
        "$sys Write a loop in C." "$sys Which is bigger, a cat or a whale?" > "$W/$1.cls" 2> "$W/$1.err"
    ok $? "classifications ($1): $(tail -2 "$W/$1.err")"
    "$L" stop -c "$W/t2.cfg" --bin "$BIN" --run "$W/run" > /dev/null 2>&1; ok $? "stop ($1)"
    mv "$W/run/a.log" "$W/$1.log"
}
serve true
serve false
texts() { /usr/bin/python3 -c 'import json,sys
for f in sys.argv[1:]:
    rows = sorted((json.loads(l) for l in open(f) if l.strip()), key=lambda r: r.get("index", 0))
    for r in rows: print(json.dumps([r.get(k) for k in ("text", "label", "finish", "completion_tokens")]))' "$@"; }
for f in one0 one1 one2 one3 one4 one5 burst cls; do
    on=$(texts "$W/true.$f"); off=$(texts "$W/false.$f")
    [ -n "$on" ] && [ "$on" = "$off" ]; ok $? "$f: reuse on [$on] vs off [$off]"
done
# the head's line per job: N prompt tokens (R from the prefix cache), in order
reused() { sed -n 's/.*prompt tokens (\([0-9]*\) from the prefix cache).*/\1/p' "$1" | tr '\n' ' '; }
read -r -a r <<< "$(reused "$W/true.log")"
echo "reused per job: ${r[*]}"
[ "${#r[@]}" = 13 ]; ok $? "13 jobs logged, got ${#r[@]}"
[ "${r[0]}" = 0 ] && [ "${r[1]}" -ge 256 ]; ok $? "base: the second request reuses the system prompt"
[ "${r[2]}" = 0 ]; ok $? "math after base on the same prefix reuses nothing (${r[2]})"
[ "${r[3]}" = "${r[1]}" ]; ok $? "math's second request reuses as base's did (${r[3]})"
[ "${r[4]}" = 0 ]; ok $? "another mixture reuses nothing (${r[4]})"
[ "${r[5]}" -ge "${r[1]}" ]; ok $? "base again: reused (${r[5]})"
n=0; for x in "${r[@]:6:4}"; do [ "$x" -ge 256 ] && n=$((n + 1)); done
[ $n = 4 ]; ok $? "the burst of 4 reuses the system prompt: ${r[*]:6:4}"
n=0; for x in "${r[@]:11:2}"; do [ "$x" -ge 256 ] && n=$((n + 1)); done
[ $n = 2 ]; ok $? "classifications after the first reuse their shared prefix: ${r[*]:10:3}"
grep -q "prefix cache: [1-9][0-9]* of [0-9]* prompt tokens reused" "$W/true.log"; ok $? "the head's summary line"
[ -z "$(reused "$W/false.log" | tr -d '0 ')" ]; ok $? "prefix_cache = false reuses nothing: $(reused "$W/false.log")"
kill "$WD" 2> /dev/null; pkill -P "$WD" 2> /dev/null
echo "$pass passed, $fail failed"
[ $fail = 0 ] && rm -rf "$W"
[ $fail = 0 ]
