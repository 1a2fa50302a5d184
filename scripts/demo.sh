#!/usr/bin/env bash
# T2's main job on the bundled model, from a fresh Debian machine:
#   1. Debian packages (scripts/install-deps.sh; T2_SKIP_INSTALL=1 skips), a release build;
#   2. SVF set-up for models/t2-base.gguf: its SVD factors (t2 decompose, a second); the
#      experts are the ones in models/experts/ that `t2 svf` trained (math, code, mc and the
#      classifier expert `classify`; bench/train_experts.sh reproduces them);
#   3. a local deployment (deploy/t2-local.sh): a router, a dispatcher, one worker group of
#      2 MPI ranks holding half of the layers each, and t2-gateway;
#   4. a client (t2 submit) sending real task prompts with two-pass adaptation (pass 1: the
#      classifier expert, then the base model, label the prompt; pass 2: generation with the
#      chosen expert), printing the answers, the chosen expert and the timings; then the same
#      prompts with the base weights for comparison; one request through the OpenAI-compatible
#      HTTP gateway (curl), and a clean shutdown.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 # mpirun as root (containers)
if [ "${T2_SKIP_INSTALL:-0}" != 1 ]; then scripts/install-deps.sh; fi
cmake -B build -S . > /dev/null
cmake --build build -j "$(nproc)" > /dev/null
T2=$root/build/bin/t2
work=$(mktemp -d -t t2-demo.XXXXXX)
cleanup() { deploy/t2-local.sh stop -c "$work/t2.cfg" --run "$work/run" > /dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT

echo "== SVF set-up for models/t2-base.gguf (experts: models/experts, trained by t2 svf) =="
M=$root/models/t2-base.gguf
"$T2" decompose -m "$M" -o "$work/factors.gguf" --targets mlp 2> /dev/null
ls "$root/models/experts/"{math,code,mc,classify}.gguf

port=$(( 20000 + RANDOM % 20000 )) # the HTTP gateway's
cat > "$work/t2.cfg" <<CFG
version = 1;
router = { bind = "ipc://$work/router.ipc"; endpoint = "ipc://$work/router.ipc"; };
model = { path = "$M"; factors = "$work/factors.gguf"; experts_dir = "$root/models/experts";
          classifier_expert = "classify"; };
worker = { capacity = 8; threads = 1; };
dispatcher = { labels = { math = "math"; code = "code"; reasoning = "mc"; other = ""; }; };
groups = ( { name = "g0"; ranks = 2; } );
gateway = { port = $port; };
CFG
echo; echo "== starting router, dispatcher, a 2-rank worker group and the HTTP gateway =="
deploy/t2-local.sh start -c "$work/t2.cfg" --run "$work/run"

# family prompts the base model gets wrong (test split) and the experts right, and one of none
prompts=($'Jo had 6 eggs and traded 3. How many now?\n' $'run [2,0,9,6]\n' \
         $'Which one? A) frog B) elephant C) deer D) ant\n' $'Thank Gus.\n')
echo; echo "== two-pass requests: pass 1 by the classifier expert, pass 2 with the chosen expert =="
"$T2" submit -c "$work/t2.cfg" -t 0 -n 24 --parallel 4 --adapt classifier "${prompts[@]}"
echo; echo "== the same with pass 1 by the base model (prompt strategy) =="
"$T2" submit -c "$work/t2.cfg" -t 0 -n 24 --parallel 4 --adapt prompt "${prompts[@]}"
echo; echo "== the base weights (right answers: #### 9, [0,2,6,9], the answer is (B), Thanks, Gus!) =="
"$T2" submit -c "$work/t2.cfg" -t 0 -n 24 --parallel 4 --adapt none "${prompts[@]}"
echo; echo "== an explicit mixture =="
"$T2" submit -c "$work/t2.cfg" -t 0 -n 24 --adapt mix:math=0.6,code=0.4 $'run [2,0,5,9]\n'

echo; echo "== the same through the OpenAI-compatible gateway (model t2-base:classifier) =="
echo "curl http://127.0.0.1:$port/v1/completions -d '{\"model\": \"t2-base:classifier\", ...}'"
curl -s "http://127.0.0.1:$port/v1/completions" -H 'Content-Type: application/json' \
    -d '{"model": "t2-base:classifier", "prompt": "Jo had 6 eggs and traded 3. How many now?\n",
         "max_tokens": 24, "temperature": 0}' |
    /usr/bin/python3 -c 'import json, sys; r = json.load(sys.stdin); t = r["t2"]
mix = ",".join("%s=%g" % (e["expert"], e["alpha"]) for e in t.get("mixture") or []) or "base"
print(repr(r["choices"][0]["text"]), "label=%s mixture=%s pass1=%sms pass2=%sms" %
      (t.get("label"), mix, t.get("pass1_ms"), t.get("pass2_ms")))'

echo; echo "== shutdown =="
deploy/t2-local.sh stop -c "$work/t2.cfg" --run "$work/run"
