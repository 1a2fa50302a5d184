#!/bin/bash
# strategy.sh - the three Transformer² strategies end to end on models/t2-base.gguf with random
# experts (tests/strategy_setup.sh):
#   * t2 eval --strategy none|prompt|classifier on 20 items of math and code: exit 0, the table,
#     the summary (strategy=, pass1_s=, pass2_s=), pass 1's confusion matrix whose counts sum to
#     20 (rows and the "all" row), per-family classification accuracy, and a CSV whose label /
#     expert columns follow the label map (also a --labels override);
#   * a strategy naming a missing expert (label map, classifier, profile) or folder fails with a
#     message naming it; unknown strategy, no factors, --expert with a strategy, a profile made
#     for another model or with the wrong number of per-matrix alphas are refused;
#   * t2 adapt --pop 8 --iters 3 --shots 4, per expert and --per-matrix: a profile t2-profile
#     shows, and t2 eval --strategy profile:FILE on the same 4 shots scores what t2 adapt reported
#     for the best alpha (so the per-matrix layout round-trips), each "X alone" line is what
#     t2 eval --expert X scores and "base weights" what the base scores;
#   * bad t2 adapt flags (elite 0, negative std, 0 shots, unknown task, ...) exit 2 (1 for a
#     missing expert), naming the problem.
set -u
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" # Open MPI in t2 adapt
. "$(cd "$(dirname "$0")" && pwd)/strategy_setup.sh"
fail=0
ok() { echo "ok   $1"; }
bad() { echo "FAIL $1"; fail=1; }
EV=(eval -m "$B" --task math,code --n 10 -j 1 --factors "$W/F.gguf" --experts "$W/ex")

# ---- t2 eval with each strategy
for s in none prompt classifier; do
    if "$T2" "${EV[@]}" --strategy $s --csv "$W/$s.csv" >"$W/$s.out" 2>"$W/$s.err"; then
        ok "eval --strategy $s"
    else cat "$W/$s.err"; bad "eval --strategy $s"; continue; fi
    grep -qE "^family +split +n +correct +accuracy +95% interval .* pass1 s +pass2 s +seconds$" \
        "$W/$s.out" && ok "$s: table header" || bad "$s: table header"
    grep -qE "^summary: .* strategy=$s tasks=math,code split=test n=20 correct=[0-9]+ .* pass1_s=[0-9.]+ pass2_s=[0-9.]+" \
        "$W/$s.out" && ok "$s: summary" || { cat "$W/$s.out"; bad "$s: summary"; }
    /usr/bin/python3 - "$s" "$W/$s.out" "$W/$s.csv" <<'PY' && ok "$s: confusion matrix and CSV" || bad "$s: confusion matrix and CSV"
import csv, re, sys
s, out, path = sys.argv[1], open(sys.argv[2]).read().splitlines(), sys.argv[3]
rows = list(csv.DictReader(open(path, encoding="latin-1", newline="")))
assert len(rows) == 20, len(rows)
assert all(r["strategy"] == s for r in rows)
labels = ["code", "math", "reasoning", "other"]
want = {"code": "code", "math": "math", "reasoning": "mc", "other": "base"}
if s == "none":
    assert not any("confusion" in l for l in out), "confusion matrix without pass 1"
    assert all(r["label"] == "" and r["expert"] == "base" for r in rows)
    sys.exit(0)
i = next(k for k, l in enumerate(out) if "confusion matrix" in l)
assert out[i + 1].split() == ["true", "label"] + labels + ["n", "accuracy"], out[i + 1]
cells, total = 0, None
for l in out[i + 2:i + 7]:
    f = l.split()
    if f[0] == "all":
        total = [int(x) for x in f[1:6]]
        continue
    assert f[0] in labels, l
    c = [int(x) for x in f[1:5]]
    assert sum(c) == int(f[5]), l
    cells += sum(c)
assert cells == 20 and total[4] == 20 and sum(total[:4]) == 20, (cells, total)
# the CSV agrees: per true label (math items are math, code items code) and predicted label
for r in rows:
    assert r["label"] in labels and r["expert"] == want[r["label"]], r
fam = {l.split()[0]: l.split() for l in out if re.match(r"^(math|code) +(math|code) +10 ", l)}
assert set(fam) == {"math", "code"}, fam
for f in ("math", "code"):
    n_ok = sum(1 for r in rows if r["family"] == f and r["label"] == f)
    assert int(fam[f][3]) == n_ok, (f, fam[f], n_ok)
PY
done

# --labels overrides only the labels it names
"$T2" "${EV[@]}" --strategy prompt --labels other=mc,code= --csv "$W/lab.csv" >/dev/null 2>&1 &&
/usr/bin/python3 - "$W/lab.csv" <<'PY' && ok "--labels other=mc,code=" || bad "--labels other=mc,code="
import csv, sys
want = {"code": "base", "math": "math", "reasoning": "mc", "other": "mc"}
rows = list(csv.DictReader(open(sys.argv[1], encoding="latin-1", newline="")))
assert len(rows) == 20 and all(r["expert"] == want[r["label"]] for r in rows)
PY

# ---- errors
expect() { # expect CODE PATTERN ARGS...: exit status CODE and PATTERN in stderr
    local code="$1" pat="$2"
    shift 2
    "$T2" "$@" >"$W/x.out" 2>"$W/x.err"
    local rc=$?
    if [ $rc = "$code" ] && grep -q -- "$pat" "$W/x.err"; then ok "error ($rc): $(head -1 "$W/x.err")"
    else echo "  (exit $rc)"; cat "$W/x.err"; bad "error: $pat"; fi
}
E=(eval -m "$B" --task math --n 2 -j 1)
expect 2 "'bogus' is not none, prompt, classifier or profile:FILE" "${E[@]}" --strategy bogus
expect 2 "needs --factors" "${E[@]}" --strategy prompt
expect 2 "exclude each other" "${E[@]}" --strategy prompt --factors "$W/F.gguf" --expert "$W/ex/math.gguf"
expect 2 "'poetry' is not a label" "${E[@]}" --strategy prompt --factors "$W/F.gguf" --labels poetry=math
expect 1 "experts folder $W/nodir" "${E[@]}" --strategy prompt --factors "$W/F.gguf" --experts "$W/nodir"
expect 1 "label reasoning 'nosuch' not found (no $W/ex/nosuch.gguf)" "${E[@]}" --strategy prompt \
    --factors "$W/F.gguf" --experts "$W/ex" --labels reasoning=nosuch
mv "$W/ex/mc.gguf" "$W/mc.gguf"
expect 1 "'mc' not found (no $W/ex/mc.gguf)" "${E[@]}" --strategy classifier --factors "$W/F.gguf" \
    --experts "$W/ex"
mv "$W/mc.gguf" "$W/ex/mc.gguf"
expect 1 "classifier expert 'nosuch' not found (no $W/ex/nosuch.gguf)" "${E[@]}" --strategy classifier \
    --factors "$W/F.gguf" --experts "$W/ex" --classifier nosuch
expect 1 "$W/none.gguf" "${E[@]}" --strategy "profile:$W/none.gguf" --factors "$W/F.gguf" --experts "$W/ex"
"$T2P" create -o "$W/bad.gguf" --name bad --mix math=1,nosuch=1 >/dev/null
expect 1 "profile 'bad': expert 'nosuch' not found (no $W/ex/nosuch.gguf)" "${E[@]}" \
    --strategy "profile:$W/bad.gguf" --factors "$W/F.gguf" --experts "$W/ex"
printf '1 2 3 4 5\n1 2 3 4 5\n' > "$W/ma.txt"
"$T2P" create -o "$W/bad2.gguf" --name bad2 --mix math=1,code=1 --matrix-alpha "$W/ma.txt" >/dev/null
expect 1 "5 alphas per expert, the experts adapt 18 matrices" "${E[@]}" \
    --strategy "profile:$W/bad2.gguf" --factors "$W/F.gguf" --experts "$W/ex"

# ---- t2 adapt, per expert and per matrix
AD=(adapt --task math --shots 4 --pop 8 --iters 3 --seed 7 -j 1 -m "$B" --factors "$W/F.gguf"
    --experts "$W/ex" --mix-experts math,code,mc)
# the shots' correct count of `t2 eval ARGS...` on the same 4 items
shots_correct() {
    "$T2" eval -m "$B" --task math --split train --n 4 --seed 7 -j 1 "$@" 2>/dev/null |
        sed -n 's/^summary: .* correct=\([0-9]*\) .*/\1/p'
}
for mode in expert matrix; do
    extra=(); [ $mode = matrix ] && extra=(--per-matrix)
    P="$W/p_$mode.gguf"
    if "$T2" "${AD[@]}" "${extra[@]}" -o "$P" --name "math-$mode" >"$W/a.out" 2>"$W/a.err"; then
        ok "adapt (alpha per $mode)"
    else cat "$W/a.out" "$W/a.err"; bad "adapt (alpha per $mode)"; continue; fi
    [ "$(grep -c '^t2 adapt: iter [1-3]/3: best [0-9]/4' "$W/a.err")" = 3 ] &&
        ok "$mode: a progress line per iteration" || { cat "$W/a.err"; bad "$mode: progress lines"; }
    grep -q "^wrote $P: profile 'math-$mode', 3 experts" "$W/a.out" && ok "$mode: wrote the profile" ||
        bad "$mode: wrote the profile"
    if [ $mode = expert ]; then want="profile math-expert: 3 experts, one alpha per expert"
    else want="profile math-matrix: 3 experts, one alpha per matrix"; fi
    "$T2P" show "$P" >"$W/show.out" 2>&1
    grep -q "^$want" "$W/show.out" && grep -q "^task: math" "$W/show.out" &&
        grep -q "^training: t2 adapt: cross-entropy method on 4 shots of math .*population 8, elite 2" "$W/show.out" &&
        grep -q "^base sha256: [0-9a-f]\{64\}" "$W/show.out" && ok "$mode: t2-profile show" ||
        { cat "$W/show.out"; bad "$mode: t2-profile show"; }
    [ $mode = matrix ] && { grep -q "^  math: 18 matrices" "$W/show.out" && ok "matrix: 18 alphas per expert" ||
        bad "matrix: 18 alphas per expert"; }
    got=$(sed -n 's/^  best alpha (iter [0-9]*) *\([0-9]*\)\/4 .*/\1/p' "$W/a.out")
    ev=$(shots_correct --strategy "profile:$P" --factors "$W/F.gguf" --experts "$W/ex")
    [ -n "$got" ] && [ "$got" = "$ev" ] && ok "$mode: eval of the profile on the shots: $ev/4 as adapt said" ||
        { cat "$W/a.out"; bad "$mode: eval of the profile on the shots ($ev vs $got)"; }
    for e in math code mc; do
        got=$(sed -n "s/^  $e alone *\([0-9]*\)\/4 .*/\1/p" "$W/a.out")
        ev=$(shots_correct --factors "$W/F.gguf" --expert "$W/ex/$e.gguf")
        [ -n "$got" ] && [ "$got" = "$ev" ] && ok "$mode: $e alone: $ev/4 as t2 eval --expert" ||
            bad "$mode: $e alone ($got vs $ev)"
    done
    got=$(sed -n "s/^  base weights *\([0-9]*\)\/4 .*/\1/p" "$W/a.out")
    ev=$(shots_correct)
    [ -n "$got" ] && [ "$got" = "$ev" ] && ok "$mode: base weights: $ev/4 as t2 eval" ||
        bad "$mode: base weights ($got vs $ev)"
done
# the profile strategy on the test items: a table and the summary
"$T2" "${EV[@]}" --strategy "profile:$W/p_matrix.gguf" --csv "$W/pr.csv" >"$W/pr.out" 2>&1 &&
    grep -qE "^summary: .* strategy=profile tasks=math,code split=test n=20 " "$W/pr.out" &&
    [ "$(grep -c ',profile,,profile:math-matrix,' "$W/pr.csv")" = 20 ] &&
    ok "eval --strategy profile:FILE" || { cat "$W/pr.out"; bad "eval --strategy profile:FILE"; }
# a profile made for another model
/usr/bin/python3 - "$W/p_expert.gguf" "$W/other.gguf" <<'PY'
import re, sys
b = open(sys.argv[1], "rb").read()
sha = re.search(rb"[0-9a-f]{64}", b).group(0)
open(sys.argv[2], "wb").write(b.replace(sha, b"0123456789abcdef" * 4))
PY
expect 1 "was made for another model" "${E[@]}" --strategy "profile:$W/other.gguf" \
    --factors "$W/F.gguf" --experts "$W/ex"

# bad t2 adapt flags
A=(adapt -m "$B" --factors "$W/F.gguf" --experts "$W/ex" -o "$W/x.gguf" -j 1 --pop 4 --iters 1 --shots 2)
expect 2 "--elite: 0 keeps no candidate" "${A[@]}" --task math --elite 0
expect 2 "--elite: 1.5 is out of range" "${A[@]}" --task math --elite 1.5
expect 2 "--std: -0.5 is out of range" "${A[@]}" --task math --std -0.5
expect 2 "--std: 0: the initial std must be above 0" "${A[@]}" --task math --std 0
expect 2 "--shots: 0 is out of range" "${A[@]}" --task math --shots 0
expect 2 "--pop: 1 is out of range" "${A[@]}" --task math --pop 1
expect 2 "--iters: 0 is out of range" "${A[@]}" --task math --iters 0
expect 2 "unknown family 'nope'" "${A[@]}" --task nope
expect 2 "no task" adapt -m "$B" --factors "$W/F.gguf" -o "$W/x.gguf"
expect 2 "no factors" adapt -m "$B" --task math -o "$W/x.gguf"
expect 2 "no output" adapt -m "$B" --task math --factors "$W/F.gguf"
expect 2 "'math' named twice" "${A[@]}" --task math --mix-experts math,math
expect 2 "'' is not an expert name" "${A[@]}" --task math --mix-experts math,,mc
expect 2 "--name: profile name 'a b'" "${A[@]}" --task math --name "a b"
expect 1 "expert 'nosuch' not found (no $W/ex/nosuch.gguf)" "${A[@]}" --task math --mix-experts math,nosuch
expect 1 "humaneval has only a test split" "${A[@]}" --task humaneval --data "$W"
[ -e "$W/x.gguf" ] && bad "a failed adapt wrote its output" || ok "no output written by failed runs"

exit $fail
