#!/usr/bin/python3
"""loglik_table.py - the markdown table of docs/RESULTS.md "Log-likelihood scoring" from the
outputs of bench/loglik.sh (DIR/SET.MODEL.txt): accuracy and 95 % Wilson interval per score.

    bench/loglik_table.py [DIR]        (default docs/results/loglik)
"""
import os
import re
import sys

SCORES = ["sum", "token", "char", "uncond", "pmi"]
MODELS = [("stories260K", "stories260K (pretrained, 0.26 M)"),
          ("random-260K", "random weights, stories260K's shape and vocabulary"),
          ("t2-base", "t2-base (pretrained, 1.35 M)"),
          ("random-base", "random weights, t2-base's shape and vocabulary")]


def rows(path):
    out, chance = {}, None
    pat = re.compile(r"^\S+\s+test\s+(\w+)\s+\d+\s+\d+\s+\d+\s+([\d.]+)%\s+\[\s*([\d.]+),\s*"
                     r"([\d.]+)\]%\s+([\d.]+)%")
    for line in open(path):
        m = pat.match(line)
        if m and m.group(1) in SCORES:
            out[m.group(1)] = "%s [%s, %s]" % m.group(2, 3, 4)
            chance = m.group(5)
    return out, chance


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else "docs/results/loglik"
    for s in ("arc-easy", "arc-challenge"):
        have = [(m, name) for m, name in MODELS if os.path.exists(os.path.join(d, "%s.%s.txt" %
                                                                                (s, m)))]
        if not have:
            continue
        print("\n%s (first 500 test rows)\n" % s)
        print("| model | " + " | ".join(SCORES) + " | chance |")
        print("|---|" + "---|" * (len(SCORES) + 1))
        for m, name in have:
            r, chance = rows(os.path.join(d, "%s.%s.txt" % (s, m)))
            print("| %s | %s | %s |" % (name, " | ".join(r.get(k, "-") for k in SCORES), chance))
    return 0


if __name__ == "__main__":
    sys.exit(main())
