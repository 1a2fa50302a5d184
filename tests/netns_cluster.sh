#!/bin/bash
# netns_cluster.sh - several hosts for real, on one machine: four network namespaces joined by
# veth pairs to a bridge (private addresses 10.213.0.1-4), each a "machine" of
# deploy/multihost's example, started by deploy/multihost/start.sh itself:
#   ctl   10.213.0.1  t2-router (binds that address, CURVE on), t2-dispatcher
#   gpu-a 10.213.0.2  group "big" rank 0: mpirun --hostfile (both addresses), whose launch agent
#   gpu-b 10.213.0.3  group "big" rank 1   enters the namespace instead of ssh
#   gpu-c 10.213.0.4  group "small" (1 rank)
# Open MPI is restricted to 10.213.0.0/24 (TCP only: the two ranks cannot share memory), so
# the pipeline of "big" crosses namespaces. Checks: greedy answers byte-identical to `t2 run`
# from both groups; the ranks of "big" talk over the veth addresses; gpu-c's link taken down
# (the router still counts on it for 5 s and sends it jobs) is survived like a kill (the router drops "small", its
# jobs are requeued to "big", every answer still byte-identical); plain text is refused.
# Skips (77) with the reason when namespaces cannot be made (not root, no ip netns).
set -u
BIN="${T2_BIN:-/work/main/build/bin}"
HERE="$(cd "$(dirname "$0")" && pwd)"
A="${T2_ASSETS:-$HERE/../../shared/assets}/models"
[ -f "$A/stories260K.bin" ] && [ -f "$A/tok512.bin" ] || { echo "SKIP: no stories260K in $A"; exit 77; }
command -v mpirun > /dev/null || { echo "SKIP: no mpirun"; exit 77; }
[ "$(id -u)" = 0 ] || { echo "SKIP: network namespaces need root (uid $(id -u))"; exit 77; }
command -v ip > /dev/null || { echo "SKIP: no ip (iproute2)"; exit 77; }
P="t2c$$"
if ! err=$(ip netns add "${P}probe" 2>&1); then echo "SKIP: cannot create a network namespace: $err"; exit 77; fi
ip netns del "${P}probe"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl=tcp,self  # no shared memory between "machines"
W="$(mktemp -d /tmp/t2_netns.XXXXXX)"
NS=(ctl gpu-a gpu-b gpu-c)
pass=0 fail=0
ok() { if [ "$1" = 0 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "check failed: $2" >&2; fi; }
cleanup() {
    for pid in $(pgrep -f "$W/"); do kill -9 "$pid" 2> /dev/null; done
    for n in "${NS[@]}" br; do ip netns del "$P-$n" 2> /dev/null; done
}
trap cleanup EXIT
( sleep 240 & echo $! > "$W/.wd"; wait $!; echo "netns_cluster: watchdog: over 240 s" >&2; cleanup
  kill -9 $$ ) > /dev/null 2>&1 & WD=$!

# ---- the network: a bridge in its own namespace, one veth pair per machine ----
ip netns add "$P-br" && ip -n "$P-br" link add br0 type bridge && ip -n "$P-br" link set br0 up
ok $? "bridge namespace"
for i in 0 1 2 3; do
    n="$P-${NS[$i]}"
    ip netns add "$n" &&
        ip link add v0 netns "$n" type veth peer name "p$i" netns "$P-br" &&
        ip -n "$n" addr add "10.213.0.$((i + 1))/24" dev v0 &&
        ip -n "$n" link set v0 up && ip -n "$n" link set lo up &&
        ip -n "$P-br" link set "p$i" master br0 up
    ok $? "namespace $n at 10.213.0.$((i + 1))"
done

# ---- "ssh": run a command in the namespace of a machine (a name or an address) ----
cat > "$W/agent" <<EOF
#!/bin/sh
# the launch agent: \$1 is the machine, the rest the command (as ssh would run it)
case "\$1" in
    ctl|10.213.0.1) n=ctl ;; gpu-a|10.213.0.2) n=gpu-a ;; gpu-b|10.213.0.3) n=gpu-b ;;
    gpu-c|10.213.0.4) n=gpu-c ;; *) echo "agent: unknown machine \$1" >&2; exit 255 ;;
esac
shift
exec ip netns exec "$P-\$n" sh -c "\$*"
EOF
chmod +x "$W/agent"

# ---- the deployment: deploy/multihost's, on these addresses ----
mkdir -p "$W/keys/clients" "$W/log" "$W/run"
"$BIN/t2" keygen "$W/keys/router" "$W/keys/worker" "$W/keys/dispatcher" "$W/keys/client" > /dev/null
ok $? "t2 keygen"
cp "$W/keys/client.pub" "$W/keys/clients/"
sed -e "s|tcp://10.0.0.1:5555|tcp://10.213.0.1:5555|g" \
    -e "s|/srv/t2/keys|$W/keys|" -e "s|path = \"/srv/t2/models/model.gguf\";|path = \"$A/stories260K.bin\"; tokenizer = \"$A/tok512.bin\";|" \
    -e "/factors = /d; /experts_dir = /d; /profiles_dir = /d" \
    -e "s|ranks = 4; host|ranks = 2; host|" -e "s|threads = 2;|threads = 1; log_level = \"debug\";|" \
    "$HERE/../deploy/multihost/t2.cfg" > "$W/t2.cfg"
printf '10.213.0.2 slots=1\n10.213.0.3 slots=1\n' > "$W/hosts.big"
"$BIN/t2-config" check "$W/t2.cfg" > "$W/check" 2>&1; ok $? "t2-config check: $(cat "$W/check")"
T2_CFG="$W/t2.cfg" T2_BIN_DIR="$BIN" T2_HOSTFILE="$W/hosts.big" T2_CTL=ctl T2_GPU_A=gpu-a \
    T2_GPU_C=gpu-c T2_RUN="$W/agent" T2_RSH_AGENT="$W/agent" T2_MPI_IF=10.213.0.0/24 \
    T2_LOG_DIR="$W/log" T2_PID_DIR="$W/run" sh "$HERE/../deploy/multihost/start.sh"
ok $? "deploy/multihost/start.sh"
for _ in $(seq 150); do
    [ "$(grep -c "ready for 'generate'" "$W/log/t2-router.log" 2> /dev/null)" -ge 2 ] &&
        grep -q "ready for 'generate-adaptive'" "$W/log/t2-router.log" && break
    sleep 0.2
done
grep -q "ready for 'generate'.*" "$W/log/t2-router.log" && [ "$(grep -c "ready for 'generate'" "$W/log/t2-router.log")" -ge 2 ]
ok $? "both groups registered with the router: $(grep -c "ready for" "$W/log/t2-router.log" 2> /dev/null) registrations"
grep -q "CURVE on" "$W/log/t2-router.log"; ok $? "the router runs CURVE"
grep -q "rank 1: layers" "$W/log/t2-big.log"; ok $? "group big has a rank 1"
# the rank on gpu-b talks to gpu-a over the veth addresses
conn=$(ip netns exec "$P-gpu-b" ss -tn 2> /dev/null | grep -c "10.213.0.3:.*10.213.0.2:")
[ "$conn" -gt 0 ]; ok $? "rank 1 (gpu-b) has TCP connections to gpu-a: $conn"

sub() { # NAMESPACE ARGS...: t2 submit from a machine, as the client key
    local n="$1"; shift
    ip netns exec "$P-$n" "$BIN/t2" submit -c "$W/t2.cfg" --service generate --json -t 0 "$@"
}
ref() { # PROMPT PROMPT_TOKENS N: t2 run's text after the prompt
    "$BIN/t2" run -m "$A/stories260K.bin" -z "$A/tok512.bin" -t 0 -n $(($2 + $3 - 1)) -p "$1" -j 1 2> /dev/null |
        head -c -1 | tail -c +$((${#1} + 1))
}
compare() { # JSONFILE N WHAT
    /usr/bin/python3 - "$1" "$2" "$3" "$BIN" "$A" <<'PY'
import json, subprocess, sys
path, n, what, bin_, a = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
rows = [json.loads(l) for l in open(path) if l.strip()]
bad = 0
for r in rows:
    if r["error"]:
        print(f"{what}: {r['prompt']!r}: error {r['error']}"); bad += 1; continue
    steps = min(r["prompt_tokens"] + n - 1, 512)
    out = subprocess.run([f"{bin_}/t2", "run", "-m", f"{a}/stories260K.bin", "-z", f"{a}/tok512.bin",
                          "-t", "0", "-n", str(steps), "-p", r["prompt"], "-j", "1"],
                         capture_output=True, text=True).stdout
    if out[len(r["prompt"]):-1] != r["text"]:
        print(f"{what}: {r['prompt']!r}: {r['text'][:50]!r} differs from t2 run"); bad += 1
print(f"{what}: {len(rows)} answers, {bad} bad")
sys.exit(0 if bad == 0 and rows else 1)
PY
}
PROMPTS=(-p "Once upon a time" -p "The little dog" -p "Lily and Tom went to the park" -p "A big red ball"
         -p "One day, a girl named Sue" -p "The sun was shining" -p "Tim had a toy car" -p "There was a cat")
sub gpu-c -n 40 --parallel 8 --timeout-ms 60000 "${PROMPTS[@]}" > "$W/a.json" 2> "$W/a.err"
ok $? "8 requests from gpu-c: $(tail -c 300 "$W/a.err")"
compare "$W/a.json" 40 "byte-identical to t2 run"; ok $? "answers of both groups are t2 run's"
grep -q "job .* in slot" "$W/log/t2-big.log" && grep -q "job .* in slot" "$W/log/t2-small.log"
ok $? "both groups served some of them"

# ---- gpu-c's link goes down: the router still counts on "small" for liveness x heartbeat
# (5 s), so jobs sent to it in that time are stranded there, as with a kill ----
ip -n "$P-gpu-c" link set v0 down; ok $? "gpu-c's link down"
sub ctl -n 400 --parallel 8 --timeout-ms 120000 "${PROMPTS[@]}" > "$W/b.json" 2> "$W/b.err"
ok $? "the 8 long requests ended: $(tail -c 300 "$W/b.err")"
compare "$W/b.json" 400 "after gpu-c went dark"; ok $? "every answer still t2 run's"
grep -q "small/generate of 'generate' removed (missed heartbeats), [1-9][0-9]* job(s) requeued" "$W/log/t2-router.log"
ok $? "the router dropped gpu-c's group and requeued its jobs: $(grep "removed" "$W/log/t2-router.log" | tail -1)"
ip -n "$P-gpu-c" link set v0 up

# ---- plain text is refused at the router's address ----
printf 'version = 1;\nrouter = { endpoint = "tcp://10.213.0.1:5555"; };\nsecurity = { insecure = true; };\n' > "$W/plain.cfg"
out=$(ip netns exec "$P-gpu-c" "$BIN/t2" submit -c "$W/plain.cfg" --service generate -q -n 5 --timeout-ms 2000 "Once" 2>&1)
[ $? != 0 ]; ok $? "a plain-text client gets nothing: $out"

kill "$WD" 2> /dev/null; kill "$(cat "$W/.wd")" 2> /dev/null
echo "$pass passed, $fail failed"
if [ $fail = 0 ]; then cleanup; rm -rf "$W"; else echo "kept $W"; fi
[ $fail = 0 ]
