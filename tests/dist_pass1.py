#!/usr/bin/python3
"""dist_pass1.py - pass 1 by scoring (worker.pass1 = "score") against generating ("generate").

On the bundled model with its classifier expert (models/experts/classify.gguf), 12 questions of
the transfer families (t2 tasks dump, test split) are classified through the classify service
by a 1-rank group and a 2-rank group (the tail picks the label tokens, the head mirrors it)
with pass1 = "score", and by a 1-rank group with pass1 = "generate". Checks: every scored
answer is "\\boxed{LABEL}" with the label of its Result; scored labels are the same on 1 and 2
ranks and the same as the generated ones (all three families told apart); the scored pass 1 reports fewer new tokens (0 here: the bytes c/m/r/o differ) than generating.
"""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dist_util  # noqa: E402
from dist_util import Checks, Deployment, skip  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
MODEL = os.path.join(ROOT, "models", "t2-base.gguf")
CLS = os.path.join(ROOT, "models", "experts", "classify.gguf")
FAMILIES = ("math-hard", "code-hard", "mc-hard")


def questions():
    qs = []
    for f in FAMILIES:
        r = subprocess.run([os.path.join(dist_util.BIN, "t2"), "tasks", "dump", "--family", f,
                            "--split", "test", "--n", "4", "--format", "jsonl"],
                           capture_output=True, text=True, check=True)
        qs += [json.loads(line)["prompt"] for line in r.stdout.splitlines() if line.strip()]
    return qs


def classify(d, groups, pass1, qs):
    """Labels, texts and new-token counts of qs through a deployment of `groups`."""
    d.write_config(groups, extra_worker=f'pass1 = "{pass1}";')
    d.start_router()
    for g in groups:
        d.start_group(g[0])
    for g in groups:
        d.head_pid(g[0])
    args = ["-t", "0", "--parallel", "4", "--adapt", "classifier"]
    for q in qs:
        args += ["-p", q]
    rc, out, err = d.submit(*args, service="classify")
    for name in list(d.procs):
        d.stop(name)
    os.unlink(d.path("t2.cfg"))
    if rc != 0 or len(out) != len(qs):
        return None, err
    by = {o["prompt"]: (o["label"], o["text"], o["completion_tokens"]) for o in out}
    return [by.get(q, (None, None, 0)) for q in qs], err


def main():
    if not (os.path.exists(MODEL) and os.path.exists(CLS)):
        skip("no bundled model or classifier expert (models/)")
    if not subprocess.run(["sh", "-c", "command -v mpirun"], capture_output=True).returncode == 0:
        skip("no mpirun")
    dist_util.MODEL, dist_util.TOKENIZER = MODEL, ""
    c = Checks("dist_pass1")
    d = Deployment("dist_pass1")
    ok = False
    try:
        os.makedirs(d.path("experts"))
        d.factors = d.path("experts", "factors.gguf")
        d.run("t2", "decompose", "-m", MODEL, "-o", d.factors)
        os.symlink(CLS, d.path("experts", "cls.gguf"))
        qs = questions()
        runs = {}
        for key, groups, pass1 in (("score1", [("s1", 1, "merged")], "score"),
                                   ("score2", [("s2", 2, "merged")], "score"),
                                   ("gen1", [("g1", 1, "merged")], "generate")):
            runs[key], err = classify(d, groups, pass1, qs)
            c(runs[key] is not None, f"{key}: classify failed: {err[-400:]}")
        if all(runs.values()):
            for lab, text, n in runs["score1"]:
                c(text == "\\boxed{%s}" % lab, f"scored text {text!r} for label {lab}")
                c(lab in ("code", "math", "reasoning", "other"), f"label {lab}")
            s1 = [r[0] for r in runs["score1"]]
            c(s1 == [r[0] for r in runs["score2"]], f"1 rank {s1} vs 2 ranks "
              f"{[r[0] for r in runs['score2']]}")
            g1 = [r[0] for r in runs["gen1"]]
            c(s1 == g1, f"scored {s1} vs generated {g1}")
            c(len(set(s1)) == 3, f"the three families' labels: {s1}")
            c(sum(r[2] for r in runs["score1"]) < sum(r[2] for r in runs["gen1"]),
              "scoring generated as many tokens as generating")
        ok = c.done() == 0
    finally:
        d.cleanup(ok)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
