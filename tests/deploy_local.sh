#!/bin/bash
# deploy_local.sh - the shipped deploy/t2.cfg and the launcher's bookkeeping:
#   1. deploy/t2.cfg runs as it is (the bundled model, the factors the build makes, the bundled
#      experts): a greedy answer with the base weights equals `t2 run`, and --adapt classifier
#      answers with a label;
#   2. logs are appended: a second start keeps the first run's lines;
#   3. a start that fails (a group the model cannot split) stops what it started: no router, no
#      group, no dispatcher left running; what was running before is left alone.
set -u
BIN="${T2_BIN:-/work/main/build/bin}"
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$HERE/.."
command -v mpirun > /dev/null || { echo "SKIP: no mpirun"; exit 77; }
[ -f "$BIN/../t2-base.factors.gguf" ] || { echo "FAIL: the build did not make t2-base.factors.gguf"; exit 1; }
W="$(mktemp -d /tmp/t2_deploy_local.XXXXXX)"
L="$ROOT/deploy/t2-local.sh"
CFG="$ROOT/deploy/t2.cfg"
pass=0 fail=0
ok() { if [ "$1" = 0 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "check failed: $2" >&2; fi; }
cleanup() {
    "$L" stop -c "$CFG" --bin "$BIN" --run "$W/run" > /dev/null 2>&1
    "$L" stop -c "$W/bad.cfg" --bin "$BIN" --run "$W/run2" > /dev/null 2>&1
}
trap cleanup EXIT
( sleep 150; echo "deploy_local: watchdog: over 150 s" >&2; cleanup; kill -9 $$ ) 2>&1 > /dev/null & WD=$!

# 1. the shipped file, as it is (its build folder is ../build: use this build's binaries)
if [ "$(cd "$BIN/.." && pwd)" != "$(cd "$ROOT/build" && pwd)" ]; then
    echo "SKIP: deploy/t2.cfg names ../build/t2-base.factors.gguf; this build is $BIN"; exit 77
fi
"$BIN/t2-config" check "$CFG" > /dev/null; ok $? "t2-config check deploy/t2.cfg"
"$L" start -c "$CFG" --bin "$BIN" --run "$W/run" > "$W/start1" 2>&1; ok $? "start: $(cat "$W/start1")"
got=$("$BIN/t2" submit -c "$CFG" -q -t 0 -n 12 --adapt none $'Jo had 6 eggs and traded 3. How many now?\n' 2>&1)
ok $? "submit --adapt none: $got"
# t2 run counts steps: prompt tokens (44 with BOS) + new tokens - 1
want=$("$BIN/t2" run -m "$ROOT/models/t2-base.gguf" -t 0 -n 55 -p $'Jo had 6 eggs and traded 3. How many now?\n' 2> /dev/null)
[ "${want#*How many now?$'\n'}" = "$got" ]; ok $? "base answer '$got' is t2 run's '$want'"
out=$("$BIN/t2" submit -c "$CFG" -t 0 -n 12 --adapt classifier $'run [2,0,9,6]\n' 2>&1)
[[ "$out" == *"label=code mixture=code=1"* ]]; ok $? "classifier strategy labels code: $out"

# 2. stop, start again: the first run's log lines are still there
"$L" stop -c "$CFG" --bin "$BIN" --run "$W/run" > /dev/null 2>&1; ok $? "stop"
"$L" start -c "$CFG" --bin "$BIN" --run "$W/run" > /dev/null 2>&1; ok $? "start again"
for log in router g0 dispatcher; do
    n=$(grep -c "== t2-local.sh start" "$W/run/$log.log")
    [ "$n" = 2 ]; ok $? "$log.log has both starts ($n marks)"
done
grep -q "shutting down" "$W/run/g0.log"; ok $? "g0.log keeps the first run's shutdown"
"$L" stop -c "$CFG" --bin "$BIN" --run "$W/run" > /dev/null 2>&1; ok $? "stop again"

# 3. a failed start stops what it started: group b cannot split 6 layers over 7 ranks
cat > "$W/bad.cfg" <<CFG
version = 1;
router = { bind = "ipc://$W/r.ipc"; endpoint = "ipc://$W/r.ipc"; heartbeat_ms = 200; };
model = { path = "$ROOT/models/t2-base.gguf"; };
groups = ( { name = "a"; ranks = 1; }, { name = "b"; ranks = 7; } );
CFG
T2_START_TIMEOUT=60 "$L" start -c "$W/bad.cfg" --bin "$BIN" --run "$W/run2" > "$W/start2" 2>&1
rc=$?
[ $rc != 0 ]; ok $? "a failing start exits non-zero"
grep -q "stopping what it started" "$W/start2"; ok $? "it says it stops what it started: $(cat "$W/start2")"
sleep 0.5
left=$(pgrep -f "$W/bad.cfg|$W/r.ipc" | wc -l); [ "$left" = 0 ]; ok $? "$left processes left after the failed start"
"$L" status -c "$W/bad.cfg" --bin "$BIN" --run "$W/run2" > "$W/status2" 2>&1; [ $? != 0 ]; ok $? "status: $(cat "$W/status2")"

pkill -P "$WD" 2> /dev/null; kill "$WD" 2> /dev/null
echo "$pass passed, $fail failed"
[ $fail = 0 ] && rm -rf "$W"
[ $fail = 0 ]
