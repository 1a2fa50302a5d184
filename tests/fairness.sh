#!/bin/bash
# fairness.sh - one client's flood does not starve another: while client A submits 3,000
# requests at once, client B's 20 requests all complete; A's excess is refused EBUSY at once
# (the router's per-client limit, --client-max), not queued ahead of B.
set -u
BIN="${T2_BIN:-/work/main/build/bin}"
HERE="$(cd "$(dirname "$0")" && pwd)"
A="${T2_ASSETS:-$HERE/../../shared/assets}/models"
[ -f "$A/stories260K.bin" ] && [ -f "$A/tok512.bin" ] || { echo "SKIP: no stories260K in $A"; exit 77; }
command -v mpirun > /dev/null || { echo "SKIP: no mpirun"; exit 77; }
W="$(mktemp -d /tmp/t2_fairness.XXXXXX)"
L="$HERE/../deploy/t2-local.sh"
pass=0 fail=0
ok() { if [ "$1" = 0 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "check failed: $2" >&2; fi; }
cleanup() { "$L" stop -c "$W/t2.cfg" --bin "$BIN" --run "$W/run" > /dev/null 2>&1; pkill -9 -f "$W/" 2> /dev/null; }
trap cleanup EXIT
# the watchdog: kills everything (and this script) after 150 s; stopped at the end
( sleep 150 & echo $! > "$W/.wd"; wait $!; echo "fairness: watchdog: over 150 s" >&2; cleanup
  kill -9 $$ ) > /dev/null 2>&1 & WD=$!
cat > "$W/t2.cfg" <<CFG
version = 1;
router = { bind = "ipc://$W/r.ipc"; endpoint = "ipc://$W/r.ipc"; };  # queue_max 1024
model = { path = "$A/stories260K.bin"; tokenizer = "$A/tok512.bin"; };
worker = { capacity = 8; };
groups = ( { name = "g"; ranks = 1; } );
CFG
"$L" start -c "$W/t2.cfg" --bin "$BIN" --run "$W/run" > "$W/start" 2>&1; ok $? "start: $(cat "$W/start")"
for i in $(seq 3000); do echo "Once upon a time $i"; done > "$W/flood.txt"
for i in $(seq 20); do echo "Lily saw a dog $i"; done > "$W/fair.txt"
"$BIN/t2" submit -c "$W/t2.cfg" --service generate -q -t 0 -n 30 --parallel 3000 --json \
    -f "$W/flood.txt" > "$W/flood.json" 2> "$W/flood.err" & FLOOD=$!
sleep 1
"$BIN/t2" submit -c "$W/t2.cfg" --service generate -q -t 0 -n 8 --parallel 20 --json \
    --timeout-ms 60000 -f "$W/fair.txt" > "$W/fair.json" 2> "$W/fair.err"
ok $? "client B's 20 requests: $(head -c 300 "$W/fair.err")"
n=$(grep -c '"text":"' "$W/fair.json"); [ "$n" = 20 ]; ok $? "client B got 20 answers ($n)"
wait $FLOOD
busy=$(grep -c '"code":-11' "$W/flood.json"); done_a=$(grep -c '"text":"' "$W/flood.json")
[ "$busy" -gt 0 ] && [ $((busy + done_a)) = 3000 ]; ok $? "client A: $done_a answered, $busy refused EBUSY (of 3000)"
grep -q "at most 256 per client" "$W/flood.json"; ok $? "the EBUSY names the per-client limit"
kill "$WD" 2> /dev/null; kill "$(cat "$W/.wd")" 2> /dev/null
echo "$pass passed, $fail failed"
[ $fail = 0 ] && rm -rf "$W"
[ $fail = 0 ]
