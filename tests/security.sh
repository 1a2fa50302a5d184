#!/bin/bash
# security.sh - CurveZMQ on a local deployment (stories260K; deploy/t2-local.sh; router, a
# dispatcher, a 1-rank group): an allowed client is served, byte-identical to `t2 run`; an
# unknown key, a plain-text client, a client key registering as a worker, and a worker of
# another model are refused, and the router logs each; keys readable by others are refused;
# plain ZeroMQ on a non-loopback address needs `insecure = true`.
set -u
BIN="${T2_BIN:-/work/main/build/bin}"
HERE="$(cd "$(dirname "$0")" && pwd)"
A="${T2_ASSETS:-$HERE/../../shared/assets}/models"
[ -f "$A/stories260K.bin" ] && [ -f "$A/tok512.bin" ] || { echo "SKIP: no stories260K in $A"; exit 77; }
command -v mpirun > /dev/null || { echo "SKIP: no mpirun"; exit 77; }
if [ "$(id -u)" = 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
W="$(mktemp -d /tmp/t2_security.XXXXXX)"
L="$HERE/../deploy/t2-local.sh"
pass=0 fail=0
ok() { if [ "$1" = 0 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "check failed: $2" >&2; fi; }
cleanup() {
    "$L" stop -c "$W/t2.cfg" --bin "$BIN" --run "$W/run" > /dev/null 2>&1
    [ -n "${ROGUE:-}" ] && kill -9 "$ROGUE" 2> /dev/null
    pkill -9 -f "$W/" 2> /dev/null
}
trap cleanup EXIT
# the watchdog: kills everything (and this script) after 150 s; stopped at the end
( sleep 150 & echo $! > "$W/.wd"; wait $!; echo "security: watchdog: over 150 s" >&2; cleanup
  kill -9 $$ ) > /dev/null 2>&1 & WD=$!
port=$(( 20000 + RANDOM % 20000 ))
mkdir -p "$W/keys" "$W/other"
"$BIN/t2" keygen "$W/keys/router" "$W/keys/worker" "$W/keys/dispatcher" "$W/keys/client" \
    "$W/other/stranger" > /dev/null; ok $? "t2 keygen"
[ "$(stat -c %a "$W/keys/client.key")" = 600 ]; ok $? "a secret key file is 0600"
"$BIN/t2" keygen "$W/keys/client" > /dev/null 2>&1; [ $? != 0 ]; ok $? "keygen does not overwrite"
mkdir -p "$W/keys/clients" && cp "$W/keys/client.pub" "$W/keys/clients/"
cfg() { # FILE CLIENT_KEY WORKER_KEY [EXTRA]
    cat > "$1" <<CFG
version = 1;
router = { bind = "tcp://127.0.0.1:$port"; endpoint = "tcp://127.0.0.1:$port"; heartbeat_ms = 200; };
model = { path = "$A/stories260K.bin"; tokenizer = "$A/tok512.bin"; };
worker = { capacity = 2; };
groups = ( { name = "g"; ranks = 1; } );
security = { curve = true; router_key = "$W/keys/router.key"; router_public = "$W/keys/router.pub";
             client_key = "$2"; worker_key = "$3"; dispatcher_key = "$W/keys/dispatcher.key";
             clients = "$W/keys/clients"; workers = "$W/keys/worker.pub";
             dispatchers = "$W/keys/dispatcher.pub"; ${4:-} };
CFG
}
cfg "$W/t2.cfg" "$W/keys/client.key" "$W/keys/worker.key"
"$BIN/t2-config" check "$W/t2.cfg" > /dev/null; ok $? "t2-config check of the secured file"
"$L" start -c "$W/t2.cfg" --bin "$BIN" --run "$W/run" > "$W/start" 2>&1; ok $? "start: $(cat "$W/start")"
grep -q "CURVE on: 1 client, 1 worker, 1 dispatcher key(s) allowed" "$W/run/router.log"; ok $? "the router says CURVE is on"

# an allowed client: answered, byte-identical to t2 run
got=$("$BIN/t2" submit -c "$W/t2.cfg" -q -t 0 -n 20 --adapt none --timeout-ms 20000 "Once upon a time" 2>&1)
ok $? "allowed client: $got"
want=$("$BIN/t2" run -m "$A/stories260K.bin" -z "$A/tok512.bin" -t 0 -n 24 -p "Once upon a time" 2> /dev/null)
[ "Once upon a time$got" = "$want" ]; ok $? "answer '$got' is t2 run's '$want'"
# through the dispatcher too (its own key)
got2=$("$BIN/t2" submit -c "$W/t2.cfg" -q -t 0 -n 20 --adapt prompt --timeout-ms 20000 "Once upon a time" 2>&1)
ok $? "through the dispatcher: $got2"

# an unknown key: no answer, and the router logs the refusal
cfg "$W/stranger.cfg" "$W/other/stranger.key" "$W/keys/worker.key"
out=$("$BIN/t2" submit -c "$W/stranger.cfg" -q -t 0 -n 5 --timeout-ms 2000 "Once" 2>&1); rc=$?
[ $rc != 0 ] && [[ "$out" == *"no answer from the router"* ]]; ok $? "unknown key refused (exit $rc): $out"
grep -q "refused a connection from .*is not allowed" "$W/run/router.log"; ok $? "the router logs the unknown key"

# a plain-text client: no answer
cat > "$W/plain.cfg" <<CFG
version = 1;
router = { bind = "tcp://127.0.0.1:$port"; endpoint = "tcp://127.0.0.1:$port"; heartbeat_ms = 200; };
CFG
out=$("$BIN/t2" submit -c "$W/plain.cfg" -q -t 0 -n 5 --timeout-ms 2000 --service generate "Once" 2>&1); rc=$?
[ $rc != 0 ]; ok $? "a plain-text client gets nothing (exit $rc): $out"

# a client key registering as a worker: refused and logged; the real group still answers
cfg "$W/rogue.cfg" "$W/keys/client.key" "$W/keys/client.key"
T2_LOG_LEVEL=info mpirun --oversubscribe -np 1 "$BIN/t2-worker" -c "$W/rogue.cfg" --group g \
    < /dev/null > "$W/rogue.log" 2>&1 & ROGUE=$!
for _ in $(seq 50); do grep -q "refused ready from client key" "$W/run/router.log" && break; sleep 0.2; done
grep -q "refused ready from client key" "$W/run/router.log"; ok $? "a client key cannot register as a worker"
got=$("$BIN/t2" submit -c "$W/t2.cfg" -q -t 0 -n 20 --adapt none --timeout-ms 20000 "Once upon a time" 2>&1)
[ "Once upon a time$got" = "$want" ]; ok $? "still served by the real group: '$got'"
kill -9 "$ROGUE" 2> /dev/null; pkill -9 -f "$W/rogue.cfg" 2> /dev/null; ROGUE=

# a worker of another model (a t2 init model), with a worker key: refused
"$BIN/t2" init -o "$W/other.gguf" --dim 64 --layers 2 --heads 8 --kv-heads 4 --hidden 172 \
    --vocab 512 --seed 9 > /dev/null 2>&1
sed "s|path = \"$A/stories260K.bin\"|path = \"$W/other.gguf\"|" "$W/t2.cfg" > "$W/othermodel.cfg"
mpirun --oversubscribe -np 1 "$BIN/t2-worker" -c "$W/othermodel.cfg" --group g \
    < /dev/null > "$W/other.log" 2>&1 & ROGUE=$!
for _ in $(seq 50); do grep -q "refused a worker for .* of model" "$W/run/router.log" && break; sleep 0.2; done
grep -q "refused a worker for .* of model" "$W/run/router.log"; ok $? "a worker of another model is refused"
kill -9 "$ROGUE" 2> /dev/null; pkill -9 -f "$W/othermodel.cfg" 2> /dev/null; ROGUE=
"$L" stop -c "$W/t2.cfg" --bin "$BIN" --run "$W/run" > /dev/null 2>&1; ok $? "stop"

# keys readable by others are refused; plain ZeroMQ off loopback needs insecure = true
chmod 644 "$W/keys/router.key"
out=$("$BIN/t2-config" check "$W/t2.cfg" 2>&1); [ $? != 0 ] && [[ "$out" == *"must not be accessible to other users"* ]]
ok $? "t2-config refuses a readable secret key: $out"
out=$("$BIN/t2-router" --bind "tcp://127.0.0.1:$port" --curve-key "$W/keys/router.key" \
      --allow-clients "$W/keys/clients" 2>&1); [ $? != 0 ] && [[ "$out" == *"must not be accessible"* ]]
ok $? "the router refuses a readable secret key: $out"
printf 'version = 1;\nrouter = { bind = "tcp://0.0.0.0:%d"; endpoint = "tcp://10.1.2.3:%d"; };\n' $port $port > "$W/open.cfg"
out=$("$BIN/t2-config" check "$W/open.cfg" 2>&1); [ $? != 0 ] && [[ "$out" == *"security.insecure = true"* ]]
ok $? "plain TCP off loopback refused: $out"
printf 'security = { insecure = true; };\n' >> "$W/open.cfg"
"$BIN/t2-config" check "$W/open.cfg" > /dev/null; ok $? "accepted with insecure = true"
[[ "$("$BIN/t2-config" router-args "$W/open.cfg")" == *"--insecure"* ]]; ok $? "router-args passes --insecure"

kill "$WD" 2> /dev/null; kill "$(cat "$W/.wd")" 2> /dev/null
echo "$pass passed, $fail failed"
[ $fail = 0 ] && rm -rf "$W" || echo "kept $W"
[ $fail = 0 ]
