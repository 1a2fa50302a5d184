#!/bin/bash
# fairness.sh - one client's flood does not starve another, with CURVE on: client A (one key)
# submits 3,000 requests at once through two connections (two t2 submit processes, 1,500
# each); client B (another key) submits 20. B's 20 all complete; A's excess is refused EBUSY
# at once, not queued ahead of B. The limit (router.client_max = 64 here) is per CURVE key:
# A's two connections together get one share, so fewer than 2 x 64 of A's requests are
# served (a per-connection limit would serve at least 128).
set -u
BIN="${T2_BIN:-/work/main/build/bin}"
HERE="$(cd "$(dirname "$0")" && pwd)"
A="${T2_ASSETS:-$HERE/../../shared/assets}/models"
[ -f "$A/stories260K.bin" ] && [ -f "$A/tok512.bin" ] || { echo "SKIP: no stories260K in $A"; exit 77; }
command -v mpirun > /dev/null || { echo "SKIP: no mpirun"; exit 77; }
if [ "$(id -u)" = 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
W="$(mktemp -d /tmp/t2_fairness.XXXXXX)"
L="$HERE/../deploy/t2-local.sh"
pass=0 fail=0
ok() { if [ "$1" = 0 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "check failed: $2" >&2; fi; }
cleanup() { "$L" stop -c "$W/t2.cfg" --bin "$BIN" --run "$W/run" > /dev/null 2>&1; pkill -9 -f "$W/" 2> /dev/null; }
trap cleanup EXIT
# the watchdog: kills everything (and this script) after 150 s; stopped at the end
( sleep 150 & echo $! > "$W/.wd"; wait $!; echo "fairness: watchdog: over 150 s" >&2; cleanup
  kill -9 $$ ) > /dev/null 2>&1 & WD=$!
K="$W/keys"
mkdir -p "$K/clients"
"$BIN/t2" keygen "$K/router" "$K/worker" "$K/dispatcher" "$K/flood" "$K/fair" > /dev/null
ok $? "t2 keygen"
cp "$K/flood.pub" "$K/fair.pub" "$K/clients/"
cfg() { # FILE CLIENT_KEY
    cat > "$1" <<CFG
version = 1;
router = { bind = "ipc://$W/r.ipc"; endpoint = "ipc://$W/r.ipc"; client_max = 64; };
model = { path = "$A/stories260K.bin"; tokenizer = "$A/tok512.bin"; };
worker = { capacity = 8; };
groups = ( { name = "g"; ranks = 1; } );
security = { curve = true; router_key = "$K/router.key"; router_public = "$K/router.pub";
             client_key = "$2"; worker_key = "$K/worker.key"; dispatcher_key = "$K/dispatcher.key";
             clients = "$K/clients"; workers = "$K/worker.pub"; dispatchers = "$K/dispatcher.pub"; };
CFG
}
cfg "$W/t2.cfg" "$K/flood.key"
cfg "$W/fair.cfg" "$K/fair.key"
"$L" start -c "$W/t2.cfg" --bin "$BIN" --run "$W/run" > "$W/start" 2>&1; ok $? "start: $(cat "$W/start")"
grep -q "CURVE on: 2 client" "$W/run/router.log"; ok $? "the router runs with CURVE and 2 client keys"
for i in $(seq 1500); do echo "Once upon a time $i"; done > "$W/flood1.txt"
for i in $(seq 1500); do echo "The little dog $i"; done > "$W/flood2.txt"
for i in $(seq 20); do echo "Lily saw a dog $i"; done > "$W/fair.txt"
for k in 1 2; do
    "$BIN/t2" submit -c "$W/t2.cfg" --service generate -q -t 0 -n 40 --parallel 1500 --json \
        -f "$W/flood$k.txt" > "$W/flood$k.json" 2> "$W/flood$k.err" &
    eval "FLOOD$k=\$!"
done
sleep 1
"$BIN/t2" submit -c "$W/fair.cfg" --service generate -q -t 0 -n 8 --parallel 20 --json \
    --timeout-ms 60000 -f "$W/fair.txt" > "$W/fair.json" 2> "$W/fair.err"
ok $? "client B's 20 requests: $(head -c 300 "$W/fair.err")"
n=$(grep -c '"text":"' "$W/fair.json"); [ "$n" = 20 ]; ok $? "client B got 20 answers ($n)"
wait "$FLOOD1" "$FLOOD2"
busy=$(cat "$W/flood1.json" "$W/flood2.json" | grep -c '"code":-11')
done_a=$(cat "$W/flood1.json" "$W/flood2.json" | grep -c '"text":"')
echo "client A (one key, two connections): $done_a answered, $busy refused EBUSY (of 3000)"
[ "$busy" -gt 0 ] && [ $((busy + done_a)) = 3000 ]; ok $? "client A: $done_a answered + $busy EBUSY = 3000"
[ "$done_a" -lt 128 ]; ok $? "client A's two connections share one key's limit: $done_a answered (< 2 x 64)"
grep -q "at most 64 per client key" "$W/flood1.json"; ok $? "the EBUSY names the per-key limit"
kill "$WD" 2> /dev/null; kill "$(cat "$W/.wd")" 2> /dev/null
echo "$pass passed, $fail failed"
[ $fail = 0 ] && rm -rf "$W"
[ $fail = 0 ]
