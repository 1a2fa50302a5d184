#!/usr/bin/python3
"""routing.py - pass-1 baselines on held-out templates: a first-word regex and a character n-gram
logistic regression, beside T2's prompt and classifier strategies.

    bench/routing.py [--t2 build/bin/t2] [--n-train 4000] [--n 200] [--out DIR]
                     [--t2-csv NAME=FILE ...]

Training data: the classifier expert's training prompts (`t2 tasks dump --family classify
--split train`: "Classify: QUESTION" -> \\boxed{label}; the question is what is classified).
Held-out data: the test splits of the v2 families (templates, contents and names never in
training: v2-math, v2-math2 -> math; v2-code, v2-sort-words -> code; v2-mc, v2-mc-num ->
reasoning) and, for the label other (v2 has no family of it), the v1 `other` test split; also
the v1 classify test split (same templates as training) for reference.

  regex     the four rules of issue 14: "run " -> code, "NAME had N" -> math, "Which one?" ->
            reasoning, else other
  ngram-lr  scikit-learn (Debian python3-sklearn): TfidfVectorizer(analyzer="char_wb",
            ngram_range=(1, 4), sublinear_tf) + LogisticRegression(C=10, max_iter 2000)
--t2-csv NAME=FILE adds a column from a `t2 eval --strategy prompt|classifier --csv` run on the
same families and items (the label column against the family's category).

Prints accuracy per family and overall with 95 % Wilson intervals; --out writes per-item CSVs
(id,family,correct: the label is right) for bench/paired.py.
"""
import argparse
import csv
import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from paired import wilson  # noqa: E402

HELD_OUT = [("v2-math", "math"), ("v2-math2", "math"), ("v2-code", "code"),
            ("v2-sort-words", "code"), ("v2-mc", "reasoning"), ("v2-mc-num", "reasoning"),
            ("other", "other")]
REF = [("classify", None)]
LABELS = ["code", "math", "reasoning", "other"]


def dump(t2, family, split, n, seed):
    p = subprocess.run([t2, "tasks", "dump", "--family", family, "--split", split, "--n", str(n),
                        "--seed", str(seed), "--format", "jsonl"], capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit("routing.py: t2 tasks dump --family %s: %s" % (family, p.stderr.strip()))
    return [json.loads(x) for x in p.stdout.splitlines()]


def classify_item(d):
    """(question, label) of a classify document."""
    q = d["prompt"][len("Classify: "):] if d["prompt"].startswith("Classify: ") else d["prompt"]
    m = re.match(r"\\boxed\{(\w+)\}", d["answer"])
    return q, m.group(1) if m else "other"


def regex_label(q):
    if q.startswith("run "):
        return "code"
    if re.match(r"[A-Z][a-z]+ had \d", q):
        return "math"
    if q.startswith("Which one?"):
        return "reasoning"
    return "other"


def load_t2_csv(path):
    out = {}
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            if "label" not in r:
                raise SystemExit("routing.py: %s has no label column (t2 eval --strategy ... "
                                 "--csv)" % path)
            out[(r["family"], r["id"])] = r["label"]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--t2", default="build/bin/t2")
    ap.add_argument("--n-train", type=int, default=4000)
    ap.add_argument("--n", type=int, default=200, help="held-out items per family")
    ap.add_argument("--out")
    ap.add_argument("--t2-csv", action="append", default=[], metavar="NAME=FILE")
    a = ap.parse_args()
    try:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
    except ImportError:
        print("routing.py: needs Debian's python3-sklearn (scripts/install-deps.sh)")
        return 77
    train = [classify_item(d) for d in dump(a.t2, "classify", "train", a.n_train, 1)]
    vec = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 4), sublinear_tf=True)
    clf = LogisticRegression(C=10.0, max_iter=2000)
    clf.fit(vec.fit_transform([q for q, _ in train]), [l for _, l in train])
    t2runs = []
    for spec in a.t2_csv:
        name, _, path = spec.partition("=")
        t2runs.append((name, load_t2_csv(path)))
    methods = ["regex", "ngram-lr"] + [n for n, _ in t2runs]
    rows, items = [], {m: [] for m in methods}
    for fam, label in HELD_OUT + REF:
        n = min(a.n, 40) if fam == "other" else a.n
        docs = dump(a.t2, fam, "test", n, 7)
        qs = [classify_item(d) if fam == "classify" else (d["prompt"], label) for d in docs]
        pred_lr = clf.predict(vec.transform([q for q, _ in qs]))
        counts = {}
        for m in methods:
            ok = tot_m = 0
            for k, (d, (q, want)) in enumerate(zip(docs, qs)):
                if m == "regex":
                    got = regex_label(q)
                elif m == "ngram-lr":
                    got = pred_lr[k]
                else:
                    got = dict(t2runs)[m].get((fam, d["id"]))
                    if got is None:
                        continue
                c = int(got == want)
                ok += c
                tot_m += 1
                if fam != "classify":
                    items[m].append((d["id"], fam, c))
            counts[m] = (ok, tot_m)
        rows.append((fam, counts))
    print("pass-1 routing accuracy on held-out templates (v2 test splits; other: v1 test)")
    print("%-14s" % "family" + "".join(" %22s" % m for m in methods))
    tot = {m: [0, 0] for m in methods}
    for fam, counts in rows:
        line = "%-14s" % fam
        for m in methods:
            k, n = counts[m]
            lo, hi = wilson(k, n)
            line += (" %5.1f%% [%5.1f, %5.1f]" % (100.0 * k / n, 100 * lo, 100 * hi) if n
                     else " %22s" % "-")
            if fam != "classify":
                tot[m][0] += k
                tot[m][1] += n
        print(line)
    line = "%-14s" % "held-out all"
    for m in methods:
        k, n = tot[m]
        lo, hi = wilson(k, n)
        line += " %5.1f%% [%5.1f, %5.1f]" % (100.0 * k / n, 100 * lo, 100 * hi)
    print(line)
    print("(classify: the v1 classify test split, the training templates; not in the total)")
    if a.out:
        os.makedirs(a.out, exist_ok=True)
        for m in methods:
            with open(os.path.join(a.out, "routing-%s.csv" % m), "w", newline="") as f:
                w = csv.writer(f)
                w.writerow(["id", "family", "correct"])
                w.writerows(items[m])
    return 0


if __name__ == "__main__":
    sys.exit(main())
