#!/usr/bin/python3
"""paired.py - paired statistics for two runs of `t2 eval` on the same items.

    bench/paired.py A.csv B.csv [--col correct] [--col-b COL] [--boot 10000] [--seed 1]
    bench/paired.py A.csv                       # one run: accuracy, Wilson and bootstrap 95 %
    bench/paired.py A.csv A.csv --col correct_char --col-b correct_uncond   # two scores, one run

Reads the per-item CSVs that `t2 eval --csv` writes (generation: id,family,correct,...;
--score loglik: id,family,correct,...,correct_sum,...,correct_pmi), joins the rows on (family,
id) and prints for each run the accuracy with its 95 % Wilson interval and a percentile bootstrap
interval, and for the pair: the items only A got right (b) and only B got right (c), McNemar's
exact two-sided p-value (binomial test of b against b + c at 1/2) and the paired bootstrap 95 %
interval of the difference B - A. Items present in only one file are counted and left out; a
duplicate (family, id) in one file is an error. Exit 0, 1 on a bad file, 2 on bad usage.
Only the standard library: runs with any python3.
"""
import argparse
import csv
import math
import random
import sys

Z95 = 1.959963984540054


def wilson(k, n, z=Z95):
    """95 % Wilson score interval of k successes in n trials."""
    if n <= 0:
        return 0.0, 1.0
    p = k / n
    z2n = z * z / n
    c = (p + z2n / 2) / (1 + z2n)
    h = z * math.sqrt(p * (1 - p) / n + z2n / (4 * n)) / (1 + z2n)
    return max(0.0, c - h), min(1.0, c + h)


def mcnemar_exact(b, c):
    """Two-sided exact McNemar p-value: P(|X - m/2| >= |b - m/2|), X ~ Binomial(m = b + c, 1/2)."""
    m = b + c
    if m == 0:
        return 1.0
    k = min(b, c)
    tail = sum(math.comb(m, i) for i in range(k + 1)) / 2.0 ** m
    return min(1.0, 2 * tail)


def bootstrap(vals_a, vals_b, reps, seed):
    """Percentile 95 % intervals of mean(a), mean(b) and mean(b - a), resampling items."""
    n = len(vals_a)
    rng = random.Random(seed)
    ma, mb, md = [], [], []
    for _ in range(reps):
        idx = [rng.randrange(n) for _ in range(n)]
        sa = sum(vals_a[i] for i in idx)
        sb = sum(vals_b[i] for i in idx) if vals_b is not None else 0
        ma.append(sa / n)
        mb.append(sb / n)
        md.append((sb - sa) / n)

    def pct(v):
        v.sort()
        return v[int(0.025 * (len(v) - 1))], v[int(math.ceil(0.975 * (len(v) - 1)))]
    return pct(ma), pct(mb), pct(md)


def read_run(path, col):
    try:
        f = open(path, newline="")
    except OSError as e:
        raise SystemExit("paired.py: %s: %s" % (path, e.strerror))
    with f:
        rd = csv.DictReader(f)
        if not rd.fieldnames or "id" not in rd.fieldnames or col not in rd.fieldnames:
            raise SystemExit("paired.py: %s: not a t2 eval CSV with columns id and %s" %
                             (path, col))
        out = {}
        for line, r in enumerate(rd, start=2):
            key = (r.get("family", ""), r["id"])
            if key in out:
                raise SystemExit("paired.py: %s:%d: item %s appears twice" % (path, line, r["id"]))
            v = r[col]
            if v not in ("0", "1"):
                raise SystemExit("paired.py: %s:%d: %s is %r, not 0 or 1" % (path, line, col, v))
            out[key] = int(v)
    if not out:
        raise SystemExit("paired.py: %s: no items" % path)
    return out


def describe(name, vals, boot):
    k, n = sum(vals), len(vals)
    lo, hi = wilson(k, n)
    print("%-3s %6d/%-6d %6.1f%%  Wilson [%5.1f, %5.1f]%%  bootstrap [%5.1f, %5.1f]%%" %
          (name, k, n, 100.0 * k / n, 100 * lo, 100 * hi, 100 * boot[0], 100 * boot[1]))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("a")
    ap.add_argument("b", nargs="?")
    ap.add_argument("--col", default="correct", help="the 0/1 column of A (and B)")
    ap.add_argument("--col-b", help="the column of B (default: --col)")
    ap.add_argument("--boot", type=int, default=10000, help="bootstrap resamples")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args(argv)
    if a.boot < 100:
        ap.error("--boot must be at least 100")
    ra = read_run(a.a, a.col)
    if a.b is None:
        vals = [ra[k] for k in sorted(ra)]
        ba, _, _ = bootstrap(vals, None, a.boot, a.seed)
        describe("A", vals, ba)
        return 0
    rb = read_run(a.b, a.col_b or a.col)
    keys = sorted(set(ra) & set(rb))
    only = len(set(ra) ^ set(rb))
    if not keys:
        raise SystemExit("paired.py: %s and %s share no item" % (a.a, a.b))
    va, vb = [ra[k] for k in keys], [rb[k] for k in keys]
    b = sum(1 for x, y in zip(va, vb) if x and not y)
    c = sum(1 for x, y in zip(va, vb) if y and not x)
    ba, bb, bd = bootstrap(va, vb, a.boot, a.seed)
    print("paired items: %d%s" % (len(keys), " (%d in one file only, left out)" % only
                                   if only else ""))
    describe("A", va, ba)
    describe("B", vb, bb)
    d = (sum(vb) - sum(va)) / len(keys)
    print("B - A %+.1f points, paired bootstrap [%+.1f, %+.1f]" % (100 * d, 100 * bd[0],
                                                                  100 * bd[1]))
    print("discordant: only A right %d, only B right %d; McNemar exact p = %.4g" %
          (b, c, mcnemar_exact(b, c)))
    print("summary: n=%d a=%d b=%d only_a=%d only_b=%d diff=%.4f diff_ci95=%.4f,%.4f p=%.6g" %
          (len(keys), sum(va), sum(vb), b, c, d, bd[0], bd[1], mcnemar_exact(b, c)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
