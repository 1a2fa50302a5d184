#!/usr/bin/python3
"""tasks_v2.py - task suite v2 (shared/tasks/tasks_v2.c): disjoint splits, and the v1 suite
unchanged.

For each v2 family, `t2 tasks dump --format jsonl` gives items of the train, validation and test
splits. From each id ("v2-math:T.A.B.OP.N.O.V", ...) the template, the content (operands, the
sorted multiset, the set of options) and the vocabulary indices (names, objects, verbs) are read,
and the three splits must share none of them; there must be at least 20 templates in all. Checked
on the prompt text, independently of the ids: no test or validation prompt is a train prompt, and
no name that starts a train prompt of v2-math starts a test one. Then the v1 families' documents
(the pretraining mixture and every split of every v1 family) must hash to the value they had
before v2 existed (sha256 of the concatenated dumps, computed with the pre-v2 binary).

Environment: T2_BIN. Exit 0 = passed, 1 = failed.
"""
import hashlib
import json
import os
import subprocess
import sys

V1_SHA256 = "632a4c5cb6f059e1ebdffcfb4149ad2d95ac1859c86862bb3268d3342f07bf75"
V1_FAMILIES = ["math", "code", "mc", "math-hard", "code-hard", "mc-hard", "classify", "other"]

# family -> (number of key fields, content of the fields, vocabulary fields)
FAMILIES = {
    "v2-math": (lambda f: tuple(f[1:4]), lambda f: {("name", f[4]), ("obj", f[5]),
                                                    ("verb", f[3], f[6])}),
    "v2-math2": (lambda f: tuple(f[1:4]), lambda f: {("name", f[4]), ("obj", f[5])}),
    "v2-code": (lambda f: tuple(sorted(str(f[1]))), lambda f: set()),
    "v2-mc": (lambda f: tuple(sorted(f[1:])), lambda f: set()),
    "v2-mc-num": (lambda f: tuple(sorted(f[1:])), lambda f: set()),
    "v2-sort-words": (lambda f: tuple(sorted(f[1:])), lambda f: set()),
}
SPLITS = [("train", 1500), ("validation", 200), ("test", 200)]


def fail(msg):
    print("FAIL: " + msg, flush=True)
    sys.exit(1)


def t2(args):
    p = subprocess.run([T2] + args, capture_output=True, timeout=120)
    if p.returncode != 0:
        fail("t2 %s: exit %d: %s" % (" ".join(args), p.returncode, p.stderr.decode()))
    return p.stdout


def fields(fam, key):
    if fam == "v2-code":  # "T.DIGITS": keep the digits as a string (leading zeros)
        t, d = key.split(".")
        return [int(t), d]
    return [int(x) for x in key.split(".")]


def check_family(fam):
    content_of, vocab_of = FAMILIES[fam]
    seen = {}
    prompts = {}
    for split, n in SPLITS:
        out = t2(["tasks", "dump", "--family", fam, "--split", split, "--n", str(n), "--format",
                  "jsonl", "--seed", "4"])
        tmpl, content, vocab, ps = set(), set(), set(), set()
        for line in out.decode().splitlines():
            d = json.loads(line)
            key = d["id"].split(":", 1)[1]
            f = fields(fam, key)
            tmpl.add(f[0])
            content.add(content_of(f))
            vocab |= vocab_of(f)
            ps.add(d["prompt"])
        if len(ps) < n // 2:
            fail("%s %s: only %d distinct prompts of %d" % (fam, split, len(ps), n))
        seen[split] = (tmpl, content, vocab)
        prompts[split] = ps
    names = ["templates", "contents", "vocabulary"]
    for i, what in enumerate(names):
        for a, b in [("train", "validation"), ("train", "test"), ("validation", "test")]:
            common = seen[a][i] & seen[b][i]
            if common:
                fail("%s: %s shared by %s and %s: %s" % (fam, what, a, b, sorted(common)[:5]))
    n_tmpl = len(set().union(*(seen[s][0] for s in seen)))
    if n_tmpl < 20:
        fail("%s: %d templates, want >= 20" % (fam, n_tmpl))
    for s in ("validation", "test"):
        if prompts[s] & prompts["train"]:
            fail("%s: a %s prompt is also a train prompt" % (fam, s))
    if fam == "v2-math":
        first = {s: {p.split()[0].rstrip(":'s") for p in prompts[s]
                     if p[0].isupper() and not p.startswith(("How", "Start", "Q:", "There",
                                                             "If", "Word", "Count", "Tell",
                                                             "With"))} for s in prompts}
        if first["train"] & first["test"]:
            fail("v2-math: names in both train and test prompts: %s" %
                 sorted(first["train"] & first["test"]))
    print("%s: %d templates; splits disjoint in templates, contents and vocabulary" %
          (fam, n_tmpl))


def main():
    global T2
    T2 = os.path.join(os.environ.get("T2_BIN", "build/bin"), "t2")
    for fam in FAMILIES:
        check_family(fam)
    h = hashlib.sha256()
    h.update(t2(["tasks", "dump", "--family", "all", "--mix", "pretrain", "--n", "5000",
                 "--seed", "1"]))
    for f in V1_FAMILIES:
        for s in ("train", "validation", "test"):
            n = "40" if f == "other" and s != "train" else "100"
            h.update(t2(["tasks", "dump", "--family", f, "--split", s, "--n", n, "--seed", "2",
                         "--format", "jsonl"]))
    if h.hexdigest() != V1_SHA256:
        fail("the v1 families' documents changed (sha256 %s, want %s)" % (h.hexdigest(),
                                                                          V1_SHA256))
    print("v1 families: documents unchanged")
    return 0


if __name__ == "__main__":
    sys.exit(main())
