#!/bin/bash
# gateway_local.sh - deploy/t2-local.sh with a gateway section on stories260K: start brings up
# t2-gateway after the router, the group and the dispatcher; /health is 200 and a completion
# answers through it; status lists it; stop stops it first and leaves nothing running.
set -u
BIN="${T2_BIN:-/work/main/build/bin}"
HERE="$(cd "$(dirname "$0")" && pwd)"
A="${T2_ASSETS:-$HERE/../../shared/assets}/models"
[ -f "$A/stories260K.bin" ] && [ -f "$A/tok512.bin" ] || { echo "SKIP: no stories260K in $A"; exit 77; }
command -v mpirun > /dev/null || { echo "SKIP: no mpirun"; exit 77; }
command -v curl > /dev/null || { echo "SKIP: no curl"; exit 77; }
W="$(mktemp -d /tmp/t2_gateway_local.XXXXXX)"
L="$HERE/../deploy/t2-local.sh"
pass=0 fail=0
ok() { if [ "$1" = 0 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "check failed: $2" >&2; fi; }
cleanup() { "$L" stop -c "$W/t2.cfg" --bin "$BIN" --run "$W/run" > /dev/null 2>&1; }
trap cleanup EXIT
( sleep 100 && { echo "gateway_local: watchdog: over 100 s" >&2; cleanup; kill -9 $$; } ) 2>&1 > /dev/null & WD=$!
port=$(( 20000 + RANDOM % 20000 ))
http=$(( 20000 + RANDOM % 20000 ))
cat > "$W/t2.cfg" <<CFG
version = 1;
router = { bind = "tcp://127.0.0.1:$port"; endpoint = "tcp://127.0.0.1:$port"; heartbeat_ms = 200; };
model = { path = "$A/stories260K.bin"; tokenizer = "$A/tok512.bin"; };
worker = { capacity = 2; };
groups = ( { name = "a"; ranks = 1; } );
gateway = { port = $http; };
CFG
"$L" start -c "$W/t2.cfg" --bin "$BIN" --run "$W/run" > "$W/start" 2>&1; ok $? "start: $(cat "$W/start")"
grep -q "gateway: started on http://127.0.0.1:$http" "$W/start"; ok $? "start names the gateway"
sleep 0.5
code=$(curl -s -o "$W/health" -w '%{http_code}' "http://127.0.0.1:$http/health")
[ "$code" = 200 ]; ok $? "/health: $code $(cat "$W/health" 2> /dev/null)"
got=$(curl -s "http://127.0.0.1:$http/v1/completions" -H 'Content-Type: application/json' \
      -d '{"model": "t2-base", "prompt": "Once upon a time", "max_tokens": 30, "temperature": 0}')
want=$("$BIN/t2" run -m "$A/stories260K.bin" -z "$A/tok512.bin" -t 0 -n 34 -p "Once upon a time" 2> /dev/null)
text=$(printf '%s' "$got" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["choices"][0]["text"], end="")')
[ "Once upon a time$text" = "$want" ]; ok $? "the gateway's answer '$text' is t2 run's '$want'"
"$L" status -c "$W/t2.cfg" --bin "$BIN" --run "$W/run" | grep -q "gateway: running"; ok $? "status lists the gateway"
"$L" stop -c "$W/t2.cfg" --bin "$BIN" --run "$W/run" > "$W/stop" 2>&1; ok $? "stop"
head -1 "$W/stop" | grep -q "gateway: stopped"; ok $? "the gateway stops first: $(cat "$W/stop")"
sleep 0.3
left=$(pgrep -f "$W/t2.cfg" | wc -l); [ "$left" = 0 ]; ok $? "$left processes left"
pkill -P "$WD" 2> /dev/null; kill "$WD" 2> /dev/null
echo "$pass passed, $fail failed"
[ $fail = 0 ] && rm -rf "$W"
[ $fail = 0 ]
