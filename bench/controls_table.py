#!/usr/bin/python3
"""controls_table.py - docs/RESULTS.md's control tables and paired tests from bench/controls.sh.

    bench/controls_table.py [DIR]      (default docs/results/controls)

Reads the per-item CSVs of DIR (GROUP-RUN.csv, `t2 eval --csv`) and prints, as Markdown:
  1. per family, every run's accuracy with its 95 % Wilson interval and, beside it, the paired
     difference to base weights (McNemar exact p on the same items);
  2. the expert controls: the right expert against base, the random expert and each wrong
     expert (difference, paired bootstrap 95 % interval, McNemar p);
  3. Table 2's comparisons (strategies against base, against each other, the few-shot CEM
     against the best single expert), with intervals and p.
Every p-value is McNemar's exact test on the items only one of the two runs got right
(bench/paired.py); the intervals of differences are paired bootstrap percentiles of the mean
per-item difference (10,000 resamples, seed 1). Standard library only.
"""
import math
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import paired  # noqa: E402

EXPERT_OF = {"math": "math", "code": "code", "mc": "mc", "math-hard": "math", "code-hard": "code",
             "mc-hard": "mc", "v2-math": "math", "v2-code": "code", "v2-mc": "mc",
             "v2-math2": "math", "v2-sort-words": "code", "v2-mc-num": "mc"}
GROUPS = [("train", ["math", "code", "mc"]), ("transfer", ["math-hard", "code-hard"]),
          ("transfer450", ["mc-hard"]),
          ("v2", ["v2-math", "v2-code", "v2-mc", "v2-math2", "v2-sort-words", "v2-mc-num"])]
RUNS = ["base", "expert-math", "expert-code", "expert-mc", "random-math", "random-code",
        "random-mc", "cued", "shots1", "shots2"]


def load(path):
    """{(family, id): 0/1} of a t2 eval CSV, or None when the file is absent."""
    if not os.path.exists(path):
        return None
    return paired.read_run(path, "correct")


def fam_items(run, fam):
    return {k: v for k, v in run.items() if k[0] == fam}


def acc(v):
    k, n = sum(v.values()), len(v)
    lo, hi = paired.wilson(k, n)
    return "%.1f [%.1f, %.1f]" % (100.0 * k / n, 100 * lo, 100 * hi)


def boot_diff(d, reps=10000, seed=1):
    """Percentile 95 % interval of mean(d), resampling the items' differences d (B - A)."""
    rng = random.Random(seed)
    n = len(d)
    means = sorted(sum(rng.choices(d, k=n)) / n for _ in range(reps))
    return means[int(0.025 * (reps - 1))], means[int(math.ceil(0.975 * (reps - 1)))]


def compare(a, b, boot=True):
    """B - A on their shared items: (points, lo, hi, p, n); lo, hi None without boot."""
    keys = sorted(set(a) & set(b))
    va, vb = [a[k] for k in keys], [b[k] for k in keys]
    only_a = sum(1 for x, y in zip(va, vb) if x and not y)
    only_b = sum(1 for x, y in zip(va, vb) if y and not x)
    lo = hi = None
    if boot:
        lo, hi = boot_diff([y - x for x, y in zip(va, vb)])
        lo, hi = 100 * lo, 100 * hi
    diff = 100.0 * (sum(vb) - sum(va)) / len(keys)
    return diff, lo, hi, paired.mcnemar_exact(only_a, only_b), len(keys)


def fmt_p(p):
    return "%.2g" % p if p >= 1e-4 else "%.0e" % p


def fmt_cmp(c):
    return "%+.1f [%+.1f, %+.1f], p = %s" % (c[0], c[1], c[2], fmt_p(c[3]))


def table_runs(d, runs_by_group):
    print("| family | " + " | ".join(RUNS) + " |")
    print("|---" * (len(RUNS) + 1) + "|")
    for g, fams in GROUPS:
        runs = runs_by_group[g]
        for fam in fams:
            base = fam_items(runs["base"], fam) if runs.get("base") else None
            cells = []
            for r in RUNS:
                run = runs.get(r)
                if run is None or not fam_items(run, fam):
                    cells.append("—")
                    continue
                v = fam_items(run, fam)
                cell = acc(v)
                if r != "base" and base:
                    c = compare(base, v, boot=False)
                    cell += " (%+.1f, p %s)" % (c[0], fmt_p(c[3]))
                cells.append(cell)
            print("| %s (n %d) | %s |" % (fam, len(base or {}), " | ".join(cells)))


def table_experts(runs_by_group):
    print("| family | right expert | − base | − random expert | − wrong expert 1 | "
          "− wrong expert 2 | cued (base) − right expert |")
    print("|---|---|---|---|---|---|---|")
    for g, fams in GROUPS:
        runs = runs_by_group[g]
        for fam in fams:
            e = EXPERT_OF[fam]
            right = fam_items(runs["expert-" + e], fam)
            row = ["%s: %s" % (e, acc(right)),
                   fmt_cmp(compare(fam_items(runs["base"], fam), right)),
                   fmt_cmp(compare(fam_items(runs["random-" + e], fam), right))]
            for w in [x for x in ("math", "code", "mc") if x != e]:
                row.append("%s: %s" % (w, fmt_cmp(compare(fam_items(runs["expert-" + w], fam),
                                                           right))))
            cued = runs.get("cued")
            row.append(fmt_cmp(compare(right, fam_items(cued, fam))) if cued else "—")
            print("| %s | %s |" % (fam, " | ".join(row)))


def table2(d, runs_by_group):
    strategies = ["prompt", "classifier", "profile", "profile-per-matrix"]
    pairs = [("none", s) for s in strategies] + [
        ("prompt", "classifier"), ("prompt", "profile"), ("classifier", "profile"),
        ("classifier", "profile-per-matrix"), ("profile", "profile-per-matrix")]
    print("| family | comparison (B − A) | A | B | B − A [95 %] | McNemar p |")
    print("|---|---|---|---|---|---|")
    for fam in ["math-hard", "code-hard", "mc-hard"]:
        g = "transfer450" if fam == "mc-hard" else "transfer"
        runs = {"none": fam_items(runs_by_group[g]["base"], fam)}
        for s in strategies:
            r = load(os.path.join(d, "t2-%s-%s.csv" % (fam, s)))
            if r is not None:
                runs[s] = fam_items(r, fam)
        experts = {e: fam_items(runs_by_group[g]["expert-" + e], fam) for e in
                   ("math", "code", "mc")}
        best = max(experts, key=lambda e: sum(experts[e].values()))
        runs["best single expert (%s)" % best] = experts[best]
        rows = pairs + [("best single expert (%s)" % best, "profile"),
                        ("best single expert (%s)" % best, "profile-per-matrix")]
        right = EXPERT_OF[fam]
        rnd = runs_by_group[g].get("random-" + right)
        if rnd:
            runs["random expert"] = fam_items(rnd, fam)
        for w in [x for x in ("math", "code", "mc") if x != right]:
            runs["wrong expert %s" % w] = experts[w]
        for ctl in ["random expert"] + ["wrong expert %s" % w for w in ("math", "code", "mc")
                                        if w != right]:
            rows += [(ctl, "classifier"), (ctl, "profile")]
        for a, b in rows:
            if a not in runs or b not in runs:
                continue
            c = compare(runs[a], runs[b])
            print("| %s | %s vs %s | %s | %s | %+.1f [%+.1f, %+.1f] | %s |" %
                  (fam, b, a, acc(runs[a]), acc(runs[b]), c[0], c[1], c[2], fmt_p(c[3])))


def main(argv):
    d = argv[1] if len(argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                    "..", "docs", "results", "controls")
    runs_by_group = {}
    for g, _ in GROUPS:
        runs_by_group[g] = {r: load(os.path.join(d, "%s-%s.csv" % (g, r))) for r in RUNS}
        if runs_by_group[g]["base"] is None:
            raise SystemExit("controls_table.py: %s: no %s-base.csv (run bench/controls.sh)" %
                             (d, g))
    print("### Accuracy per run (%, 95 % Wilson interval; in brackets: − base, McNemar p)\n")
    table_runs(d, runs_by_group)
    print("\n### The right expert against base and the expert controls "
          "(points, paired bootstrap 95 %, McNemar p)\n")
    table_experts(runs_by_group)
    print("\n### Table 2's comparisons, paired on the same items\n")
    table2(d, runs_by_group)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
