#!/usr/bin/env bash
# Install, build and run T2 on a small real model:
#   1. Debian packages (scripts/install-deps.sh), then a release build into build/;
#   2. `t2 run` on stories260K (greedy and sampled), with prompt and generation speed;
#   3. SVF: the model's SVD factors, two experts, and generation with a mixture of them.
# The model comes from ../shared/assets (next to this checkout) or T2_ASSETS.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${T2_SKIP_INSTALL:-0}" != 1 ]; then scripts/install-deps.sh; fi
cmake -B build -S . > /dev/null
cmake --build build -j "$(nproc)"
T2=build/bin/t2
A=${T2_ASSETS:-../shared/assets}/models
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
if [ ! -f "$A/stories260K.bin" ] || [ ! -f "$A/tok512.bin" ]; then
    echo "demo: stories260K.bin and tok512.bin not found in $A (set T2_ASSETS); T2 does not yet" >&2
    echo "ship a bundled model of its own (see README, status)" >&2
    exit 1
fi
"$T2" convert "$A/stories260K.bin" "$work/model.gguf" -z "$A/tok512.bin"
M="$work/model.gguf"
echo; echo "== greedy, no prompt =="
"$T2" run -m "$M" -t 0 -n 120 || true
echo; echo "== sampled (temperature 0.8, top-p 0.9, seed 7), with a prompt =="
"$T2" run -m "$M" -t 0.8 --top-p 0.9 -s 7 -n 120 -p "One day, a little dog" || true
echo; echo "== SVF: factors, two random (untrained) experts, a mixture of them =="
"$T2" decompose -m "$M" -o "$work/factors.gguf" --targets mlp
"$T2" expert init -m "$M" --factors "$work/factors.gguf" -o "$work/rand1.gguf" --name rand1 --noise 0.5 --seed 1
"$T2" expert init -m "$M" --factors "$work/factors.gguf" -o "$work/rand2.gguf" --name rand2 --noise 0.5 --seed 2
"$T2" run -m "$M" -t 0 -n 120 -p "One day, a little dog" --factors "$work/factors.gguf" \
    --mix rand1=0.7,rand2=0.5 --apply factored || true
