#!/usr/bin/env bash
# docs/RESULTS.md Tables 1-3 on the bundled model and experts: every number there is in one of
# the files this writes (default docs/results/). About 25 minutes on 2 cores.
#
#   bench/tables.sh [BUILD_DIR] [EXPERTS_DIR] [OUT_DIR]   (build, models/experts, docs/results)
#
# Table 1: base / LoRA / SVF on the training families' test splits (n 500; LoRA models are
#          read from EXPERTS_DIR/lora16-LR-FAMILY.gguf when bench/train_experts.sh made them).
# Table 2: base / prompt / classifier / few-shot (a CEM profile per family from 10 training
#          shots; α per expert and α per expert per matrix) on the transfer families' test
#          splits (n 500; mc-hard 450: all it has).
# Table 3 and the confusion matrices: the pass-1 / pass-2 times and the label counts that the
#          prompt and classifier runs of Table 2 print.
# Evaluation v2: bench/loglik.sh (OUT/loglik) and bench/routing.sh (OUT/routing), about 30
#          minutes more; the controls and Table 2's paired tests: bench/controls.sh
#          (OUT/controls, its tables in OUT/controls/tables.md by bench/controls_table.py).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
experts=${2:-$here/models/experts}
out=${3:-$here/docs/results}
t2=$build/bin/t2
M=$here/models/t2-base.gguf
mkdir -p "$out/profiles"
F=$out/factors.gguf
"$t2" decompose -m "$M" -o "$F" 2> /dev/null
ev=("$t2" eval -m "$M" --batch 16 -j 2)
n_of() { [ "$1" = mc-hard ] && echo 450 || echo 500; }
log() { echo "== $*" >&2; }

log "Table 1: base and SVF experts (every expert on every training family)"
"${ev[@]}" --task math,code,mc --n 500 > "$out/t1-base.txt"
for e in math code mc; do
    "${ev[@]}" --factors "$F" --expert "$experts/$e.gguf" --task math,code,mc --n 500 \
        > "$out/t1-svf-$e.txt"
done
for f in "$experts"/lora16-*-{math,code,mc}.gguf; do
    [ -f "$f" ] || continue
    b=$(basename "$f" .gguf); fam=${b##*-}
    "$t2" eval -m "$f" --batch 16 -j 2 --task "$fam" --n 500 > "$out/t1-$b.txt"
done

log "few-shot profiles (CEM, 10 shots of each transfer family's training split)"
for fam in math-hard code-hard mc-hard; do
    "$t2" adapt --task "$fam" --shots 10 -m "$M" --factors "$F" --experts "$experts" \
        --mix-experts math,code,mc -j 2 -o "$out/profiles/$fam.gguf" > "$out/adapt-$fam.txt" 2>&1
done

for fam in math-hard code-hard mc-hard; do
    "$t2" adapt --task "$fam" --shots 10 -m "$M" --factors "$F" --experts "$experts" \
        --mix-experts math,code,mc --per-matrix -j 2 -o "$out/profiles/$fam-per-matrix.gguf" \
        > "$out/adapt-$fam-per-matrix.txt" 2>&1
done

log "Table 2 / 3: strategies on the transfer families"
for fam in math-hard code-hard mc-hard; do
    n=$(n_of "$fam")
    for s in none prompt classifier "profile:$out/profiles/$fam.gguf" \
        "profile:$out/profiles/$fam-per-matrix.gguf"; do
        tag=${s%%:*}
        [ "${s%-per-matrix.gguf}" != "$s" ] && tag=profile-per-matrix
        "${ev[@]}" --factors "$F" --experts "$experts" --task "$fam" --n "$n" --strategy "$s" \
            > "$out/t2-$fam-$tag.txt"
    done
done
log "confusion matrices on the training families too"
for s in prompt classifier; do
    "${ev[@]}" --factors "$F" --experts "$experts" --task math,code,mc --n 500 --strategy "$s" \
        > "$out/t2-train-$s.txt"
done
rm -f "$F"
log "evaluation v2: ARC by log-likelihood with controls, routing on held-out templates"
"$here/bench/loglik.sh" "$build" "$out/loglik" || [ $? = 77 ]
"$here/bench/routing.sh" "$build" "$out/routing"
log "controls (random / wrong expert, cue, few-shot prompting) and paired tests, about 15 minutes"
PROFILES="$out/profiles" "$here/bench/controls.sh" "$build" "$experts" "$out/controls"
/usr/bin/python3 "$here/bench/controls_table.py" "$out/controls" > "$out/controls/tables.md"
log "done: $out"
