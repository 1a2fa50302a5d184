#!/bin/bash
# dist_local.sh - deploy/t2-local.sh on stories260K: start (router, dispatcher, a 2-rank and a
# 1-rank group), status, an answer through `t2 submit` identical to `t2 run`, stop (every
# process gone, exit codes 0 in the logs' last lines), status says stopped.
set -u
BIN="${T2_BIN:-/work/main/build/bin}"
HERE="$(cd "$(dirname "$0")" && pwd)"
A="${T2_ASSETS:-$HERE/../../shared/assets}/models"
[ -f "$A/stories260K.bin" ] && [ -f "$A/tok512.bin" ] || { echo "SKIP: no stories260K in $A"; exit 77; }
command -v mpirun > /dev/null || { echo "SKIP: no mpirun"; exit 77; }
W="$(mktemp -d /tmp/t2_dist_local.XXXXXX)"
L="$HERE/../deploy/t2-local.sh"
pass=0 fail=0
ok() { if [ "$1" = 0 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "check failed: $2" >&2; fi; }
cleanup() { "$L" stop -c "$W/t2.cfg" --bin "$BIN" --run "$W/run" > /dev/null 2>&1; }
trap cleanup EXIT
( sleep 100; echo "dist_local: watchdog: over 100 s" >&2; cleanup; kill -9 $$ ) 2>&1 > /dev/null & WD=$!
port=$(( 20000 + RANDOM % 20000 ))
"$BIN/t2" decompose -m "$A/stories260K.bin" -o "$W/factors.gguf" > /dev/null 2>&1
"$BIN/t2" expert init -m "$A/stories260K.bin" --factors "$W/factors.gguf" -o "$W/e1.gguf" \
    --name e1 --noise 0.5 --seed 3 > /dev/null 2>&1
cat > "$W/t2.cfg" <<CFG
version = 1;
router = { bind = "tcp://127.0.0.1:$port"; endpoint = "tcp://127.0.0.1:$port";
           heartbeat_ms = 200; };
model = { path = "$A/stories260K.bin"; tokenizer = "$A/tok512.bin"; factors = "factors.gguf"; };
worker = { capacity = 2; };
groups = ( { name = "a"; ranks = 2; }, { name = "b"; ranks = 1; apply = "factored"; } );
CFG
"$L" start -c "$W/t2.cfg" --bin "$BIN" --run "$W/run"; ok $? "start"
"$L" status -c "$W/t2.cfg" --bin "$BIN" --run "$W/run" > "$W/status1"; ok $? "status while running"
got=$("$BIN/t2" submit -c "$W/t2.cfg" -q -t 0 -n 30 --adapt mix:e1=0.8 "Once upon a time" 2>&1)
ok $? "t2 submit: $got"
want=$("$BIN/t2" run -m "$A/stories260K.bin" -z "$A/tok512.bin" -t 0 -n 34 -p "Once upon a time" \
       --factors "$W/factors.gguf" --mix e1=0.8 2> /dev/null)
[ "Once upon a time$got" = "$want" ]; ok $? "t2 submit's answer '$got' is t2 run's '$want'"
"$L" start -c "$W/t2.cfg" --bin "$BIN" --run "$W/run" | grep -q "router: running"; ok $? "start again: nothing new"
"$L" stop -c "$W/t2.cfg" --bin "$BIN" --run "$W/run" > "$W/stop" 2>&1; ok $? "stop"
grep -q SIGKILL "$W/stop"; [ $? != 0 ]; ok $? "stop needed no SIGKILL: $(cat "$W/stop")"
"$L" status -c "$W/t2.cfg" --bin "$BIN" --run "$W/run" > /dev/null; [ $? != 0 ]; ok $? "status after stop"
sleep 0.3
left=$(pgrep -f "$W/t2.cfg" | wc -l); [ "$left" = 0 ]; ok $? "$left processes left"
grep -q "stopping" "$W/run/a.log" && grep -q "shutting down" "$W/run/a.log"; ok $? "group a stopped cleanly"
pkill -P "$WD" 2> /dev/null; kill "$WD" 2> /dev/null  # the watchdog and its sleep
echo "$pass passed, $fail failed"
[ $fail = 0 ] && rm -rf "$W"
[ $fail = 0 ]
