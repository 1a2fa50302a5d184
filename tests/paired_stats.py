#!/usr/bin/python3
"""paired_stats.py - bench/paired.py: McNemar's exact test, Wilson intervals, the CSV join.

Values checked against hand computation: McNemar with b = 1, c = 9 is 2 (C(10,0) + C(10,1)) / 2^10
= 22 / 1024; b = 2, c = 10 is 2 (1 + 12 + 66) / 4096; the Wilson upper bound of 0/n is
z^2 / (n + z^2). Then two CSVs through the command line (the summary line's counts), and the
errors: a duplicate item, a value that is not 0/1, a missing column. Last, bench/controls_table.py
on a made-up controls folder (the right expert against base: sign, interval and p).
"""
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
TOOL = os.path.join(HERE, "..", "bench", "paired.py")
sys.path.insert(0, os.path.join(HERE, "..", "bench"))
import paired  # noqa: E402


def check(cond, what):
    if not cond:
        print("FAIL: " + what)
        sys.exit(1)


def main():
    check(abs(paired.mcnemar_exact(1, 9) - 22 / 1024) < 1e-15, "mcnemar(1, 9)")
    check(abs(paired.mcnemar_exact(9, 1) - 22 / 1024) < 1e-15, "mcnemar(9, 1)")
    check(abs(paired.mcnemar_exact(2, 10) - 158 / 4096) < 1e-15, "mcnemar(2, 10)")
    check(paired.mcnemar_exact(0, 0) == 1.0 and paired.mcnemar_exact(5, 5) == 1.0, "mcnemar ties")
    z2 = paired.Z95 ** 2
    lo, hi = paired.wilson(0, 10)
    check(lo == 0.0 and abs(hi - z2 / (10 + z2)) < 1e-12, "wilson(0, 10)")
    lo, hi = paired.wilson(10, 10)
    check(abs(hi - 1.0) < 1e-12 and abs(lo - 10 / (10 + z2)) < 1e-12, "wilson(10, 10)")
    lo, hi = paired.wilson(220, 500)
    check(lo < 0.44 < hi and abs((lo + hi) / 2 - (0.44 + z2 / 1000) / (1 + z2 / 500)) < 1e-12,
          "wilson(220, 500) centre")
    w = tempfile.mkdtemp(prefix="t2_paired_")
    a, b = os.path.join(w, "a.csv"), os.path.join(w, "b.csv")
    rows_a = ["id,family,correct"] + ["i%d,f,%d" % (i, i < 6) for i in range(20)]
    rows_b = ["id,family,correct"] + ["i%d,f,%d" % (i, 1 <= i < 12) for i in range(21)]
    open(a, "w").write("\n".join(rows_a) + "\n")
    open(b, "w").write("\n".join(rows_b) + "\n")
    p = subprocess.run([sys.executable, TOOL, a, b, "--boot", "500"], capture_output=True,
                       text=True)
    check(p.returncode == 0, "paired.py a b: exit %d %s" % (p.returncode, p.stderr))
    # items 0..19 paired: A right on 0..5, B on 1..11 -> only A: {0}, only B: {6..11}
    check("summary: n=20 a=6 b=11 only_a=1 only_b=6 " in p.stdout, "summary: " + p.stdout)
    check("(1 in one file only" in p.stdout, "unpaired count: " + p.stdout)
    bad = os.path.join(w, "bad.csv")
    for text, what in [("id,family,correct\nx,f,1\nx,f,0\n", "appears twice"),
                       ("id,family,correct\nx,f,yes\n", "not 0 or 1"),
                       ("id,family,right\nx,f,1\n", "columns id and correct")]:
        open(bad, "w").write(text)
        p = subprocess.run([sys.executable, TOOL, a, bad], capture_output=True, text=True)
        check(p.returncode != 0 and what in p.stderr, "bad file (%s): %s" % (what, p.stderr))
    print("paired.py: McNemar, Wilson, join and errors ok")
    controls_table(w)
    return 0


def controls_table(w):
    """bench/controls_table.py on a made-up controls folder: base right on items 10..19 of each
    family, every expert right on all 20, other runs like base; the right expert against base is
    +50.0 points with only-B 10, only-A 0: McNemar p = 2 / 2^10 = 0.002."""
    import controls_table as ct
    d = os.path.join(w, "controls")
    os.mkdir(d)
    for g, fams in ct.GROUPS:
        for r in ct.RUNS:
            rows = ["id,family,correct"]
            for f in fams:
                rows += ["%s:%d,%s,%d" % (f, i, f, r.startswith("expert") or i >= 10)
                         for i in range(20)]
            open(os.path.join(d, "%s-%s.csv" % (g, r)), "w").write("\n".join(rows) + "\n")
    p = subprocess.run([sys.executable, os.path.join(HERE, "..", "bench", "controls_table.py"), d],
                       capture_output=True, text=True)
    check(p.returncode == 0, "controls_table.py: exit %d %s" % (p.returncode, p.stderr))
    line = [x for x in p.stdout.splitlines() if x.startswith("| math | math: ")]
    check(len(line) == 1 and "| +50.0 [+" in line[0] and "p = 0.002 |" in line[0],
          "controls_table.py right expert vs base: %s" % line)
    check("| math (n 20) | 50.0 [" in p.stdout, "controls_table.py base row: " + p.stdout[:300])
    os.remove(os.path.join(d, "v2-base.csv"))
    p = subprocess.run([sys.executable, os.path.join(HERE, "..", "bench", "controls_table.py"), d],
                       capture_output=True, text=True)
    check(p.returncode != 0 and "no v2-base.csv" in p.stderr, "missing base: " + p.stderr)
    print("controls_table.py: paired rows and a missing run ok")


if __name__ == "__main__":
    sys.exit(main())
