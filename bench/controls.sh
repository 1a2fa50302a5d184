#!/usr/bin/env bash
# The controls of docs/RESULTS.md (issue 14) on the bundled model and experts, every run with a
# per-item CSV for paired tests (bench/controls_table.py reads them). About 15 minutes on 2
# cores when idle.
#
#   bench/controls.sh [BUILD_DIR] [EXPERTS_DIR] [OUT_DIR]  (build, models/experts,
#                                                           docs/results/controls)
#
# Families: the training families (math, code, mc; n 500), the transfer families (math-hard,
# code-hard n 500, mc-hard n 450) and the held-out templates of suite v2 (six families, n 200:
# templates, contents and names never seen in pretraining or expert training).
# Runs per group (files GROUP-RUN.txt / .csv):
#   base              base weights
#   expert-E          the expert E (math, code, mc) on every family: the right one and the
#                     wrong ones
#   random-E          a random expert: E's p values permuted within each matrix (seed 7;
#                     `t2 expert init --shuffle`, files random-E.gguf): the same spread of p
#   cued              base weights, the cue written into the prompt (the upper bound; v1 only:
#                     the v2 families have no cued readings)
#   shots1, shots2    base weights, 1 / 2 training-split documents before the prompt (few-shot
#                     prompting, no adaptation; the 128-byte context cuts most 2-shot prompts)
# and Table 2's strategies on the transfer families (strategy-S), with the CEM profiles of
# docs/results/profiles/ (bench/tables.sh makes them).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
experts=${2:-$here/models/experts}
out=${3:-$here/docs/results/controls}
profiles=${PROFILES:-$here/docs/results/profiles}
t2=$build/bin/t2
M=$here/models/t2-base.gguf
mkdir -p "$out"
F=$out/factors.gguf
"$t2" decompose -m "$M" -o "$F" > /dev/null 2>&1
log() { echo "== $*" >&2; }
for e in math code mc; do
    "$t2" expert init -m "$M" --factors "$F" -o "$out/random-$e.gguf" --name "random-$e" \
        --shuffle "$experts/$e.gguf" --seed 7 > /dev/null
done

# run GROUP RUN N FAMILIES [t2 eval options...]
run() {
    local g=$1 r=$2 n=$3 fams=$4
    shift 4
    log "$g $r"
    "$t2" eval -m "$M" --batch 16 -j 2 --task "$fams" --n "$n" --csv "$out/$g-$r.csv" "$@" \
        > "$out/$g-$r.txt" 2> "$out/$g-$r.err"
}
# group GROUP N FAMILIES CUE(0/1)
group() {
    local g=$1 n=$2 fams=$3 cue=$4
    run "$g" base "$n" "$fams"
    for e in math code mc; do
        run "$g" "expert-$e" "$n" "$fams" --factors "$F" --expert "$experts/$e.gguf"
        run "$g" "random-$e" "$n" "$fams" --factors "$F" --expert "$out/random-$e.gguf"
    done
    [ "$cue" = 1 ] && run "$g" cued "$n" "$fams" --prompts cued
    run "$g" shots1 "$n" "$fams" --prompts shots:1
    run "$g" shots2 "$n" "$fams" --prompts shots:2
}
group train 500 math,code,mc 1
group transfer 500 math-hard,code-hard 1
group transfer450 450 mc-hard 1
group v2 200 v2-math,v2-code,v2-mc,v2-math2,v2-sort-words,v2-mc-num 0

log "Table 2's strategies with per-item CSVs"
for fam in math-hard code-hard mc-hard; do
    n=500
    [ "$fam" = mc-hard ] && n=450
    for s in prompt classifier "profile:$profiles/$fam.gguf" \
        "profile:$profiles/$fam-per-matrix.gguf"; do
        tag=${s%%:*}
        [ "${s%-per-matrix.gguf}" != "$s" ] && tag=profile-per-matrix
        if [ "$tag" != "$s" ] && [ ! -f "${s#profile:}" ]; then log "no ${s#profile:}"; continue; fi
        run t2 "$fam-$tag" "$n" "$fam" --factors "$F" --experts "$experts" --strategy "$s"
    done
done
rm -f "$F"
log "done: $out (tables: bench/controls_table.py $out)"
