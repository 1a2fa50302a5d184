#!/bin/bash
# eval_controls.sh - the controls of docs/RESULTS.md (bench/controls.sh) on the bundled model:
#   * `t2 expert init --shuffle E`: each matrix's p is a permutation of E's (per-matrix scale
#     min / mean / max equal to E's) and not E itself (some effective maximum differs); the
#     training record says so; --shuffle with --noise / --init is refused;
#   * `t2 eval --prompts cued` reaches the model: the cued math prompts (the cue "got" written in)
#     score above the family's plain prompts; shots:K runs and says how many prompts were cut;
#     a family without cued readings and a bad --prompts value are refused with a message.
# Skips (77) without models/t2-base.gguf and its math expert.
set -u
T2="${T2_BIN:-/work/main/build/bin}/t2"
HERE="${T2_TESTS:-$(cd "$(dirname "$0")" && pwd)}"
M="$HERE/../models/t2-base.gguf"
E="$HERE/../models/experts/math.gguf"
[ -x "$T2" ] || { echo "FAIL: $T2 not found (set T2_BIN)"; exit 1; }
[ -f "$M" ] && [ -f "$E" ] || { echo "SKIP: no $M or $E"; exit 77; }
W="$(mktemp -d /tmp/t2_controls.XXXXXX)"
trap 'rm -rf "$W"' EXIT
fail=0
ok() { echo "ok   $1"; }
bad() { echo "FAIL $1"; fail=1; }

"$T2" decompose -m "$M" -o "$W/F.gguf" > /dev/null 2>&1 || bad "decompose"
"$T2" expert init -m "$M" --factors "$W/F.gguf" -o "$W/r.gguf" --name rnd --shuffle "$E" \
    --seed 7 > /dev/null || bad "expert init --shuffle"
"$T2" expert show -m "$M" --factors "$W/F.gguf" "$E" > "$W/e.txt" || bad "show E"
"$T2" expert show -m "$M" --factors "$W/F.gguf" "$W/r.gguf" > "$W/r.txt" || bad "show shuffled"
# rows "layer matrix rank min mean max effmax": min/mean/max equal, the effective max not all
stats() { awk '$1 ~ /^[0-9]+$/ { print $1, $2, $3, $4, $5, $6 }' "$1"; }
effs() { awk '$1 ~ /^[0-9]+$/ { print $7 }' "$1"; }
if [ "$(stats "$W/e.txt" | wc -l)" -gt 0 ] && [ "$(stats "$W/e.txt")" = "$(stats "$W/r.txt")" ]
then ok "shuffled expert: the same values per matrix"; else bad "shuffled expert's values"; fi
if [ "$(effs "$W/e.txt")" != "$(effs "$W/r.txt")" ]; then ok "shuffled expert: other directions"
else bad "shuffled expert equals its source"; fi
grep -q "permuted (seed 7) from expert 'math'" "$W/r.txt" && ok "training record" ||
    bad "training record"
"$T2" expert init -m "$M" --factors "$W/F.gguf" -o "$W/x.gguf" --name x --shuffle "$E" \
    --noise 0.1 > /dev/null 2> "$W/err"
[ $? = 2 ] && grep -q -- "--shuffle" "$W/err" && ok "--shuffle with --noise refused" ||
    bad "--shuffle with --noise"

acc() { sed -n 's/^summary: .* correct=\([0-9]*\) .*/\1/p' "$1"; }
"$T2" eval -m "$M" --task math --n 40 -j 2 > "$W/plain.txt" || bad "eval plain"
"$T2" eval -m "$M" --task math --n 40 -j 2 --prompts cued > "$W/cued.txt" || bad "eval cued"
p=$(acc "$W/plain.txt"); c=$(acc "$W/cued.txt")
[ -n "$p" ] && [ -n "$c" ] && [ "$c" -gt "$p" ] && ok "cued math $c/40 > plain $p/40" ||
    bad "cued math ${c:-?}/40 not above plain ${p:-?}/40"
"$T2" eval -m "$M" --task math,mc --n 20 -j 2 --prompts shots:2 > "$W/shots.txt" 2> "$W/err"
[ $? = 0 ] && grep -q "2 training-split shots" "$W/shots.txt" &&
    grep -q "prompts were cut from the left" "$W/err" && ok "shots:2 (cut to the context)" ||
    bad "shots:2"
"$T2" eval -m "$M" --task v2-math --n 5 --prompts cued > /dev/null 2> "$W/err"
[ $? = 1 ] && grep -q "v2-math has no cued readings" "$W/err" && ok "v2 cannot be cued" ||
    bad "v2 cued: $(cat "$W/err")"
for v in shots:0 shots: cue; do
    "$T2" eval -m "$M" --task math --n 5 --prompts "$v" > /dev/null 2> "$W/err"
    [ $? = 2 ] && grep -q -- "--prompts" "$W/err" && ok "--prompts $v refused" ||
        bad "--prompts $v"
done
exit $fail
