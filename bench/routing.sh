#!/usr/bin/env bash
# docs/RESULTS.md "Routing on held-out templates": pass 1 of the prompt and classifier strategies
# (bundled model and experts) on the v2 test splits and the v1 other test split, beside the
# regex and n-gram baselines of bench/routing.py, with the answers' accuracy of each strategy.
#   bench/routing.sh [BUILD_DIR] [OUT_DIR]      (build, docs/results/routing)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
out=${2:-$here/docs/results/routing}
t2=$build/bin/t2
mkdir -p "$out"
F=$out/factors.gguf
"$t2" decompose -m "$here/models/t2-base.gguf" -o "$F" 2> /dev/null
fams=v2-math,v2-math2,v2-code,v2-sort-words,v2-mc,v2-mc-num
for s in none prompt classifier; do
    "$t2" eval -m "$here/models/t2-base.gguf" --factors "$F" --experts "$here/models/experts" \
        --task "$fams" --n 200 --strategy "$s" --batch 16 -j 2 --seed 7 \
        --csv "$out/t2-$s.csv" > "$out/t2-$s.txt"
done
"$t2" eval -m "$here/models/t2-base.gguf" --factors "$F" --experts "$here/models/experts" \
    --task other --n 40 --strategy classifier --batch 16 -j 2 --seed 7 \
    --csv "$out/t2-classifier-other.csv" > "$out/t2-classifier-other.txt"
"$t2" eval -m "$here/models/t2-base.gguf" --factors "$F" --experts "$here/models/experts" \
    --task other --n 40 --strategy prompt --batch 16 -j 2 --seed 7 \
    --csv "$out/t2-prompt-other.csv" > "$out/t2-prompt-other.txt"
tail -n +2 "$out/t2-prompt-other.csv" >> "$out/t2-prompt.csv"
tail -n +2 "$out/t2-classifier-other.csv" >> "$out/t2-classifier.csv"
/usr/bin/python3 "$here/bench/routing.py" --t2 "$t2" --n 200 --out "$out" \
    --t2-csv "prompt=$out/t2-prompt.csv" --t2-csv "classifier=$out/t2-classifier.csv" \
    > "$out/routing.txt"
rm -f "$F"
