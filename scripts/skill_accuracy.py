#!/usr/bin/env python3
"""Cued-skill accuracy of a model: greedy `t2 run` on the cued prompts (got / lost, sort /
reverse, Biggest? / Smallest?) of the test split's pretraining mixture, exact match of the first
line with the cued answer. The family prompts leave out the cue, so a base model's family
accuracy is about half its skill accuracy (docs/TASKS.md section 1).

    python3 scripts/skill_accuracy.py build/bin/t2 models/t2-base.gguf math [N] [SEED]
"""
import collections
import json
import subprocess
import sys

if len(sys.argv) < 4:
    sys.exit(__doc__)
t2, model, fam = sys.argv[1:4]
n = sys.argv[4] if len(sys.argv) > 4 else "400"
seed = sys.argv[5] if len(sys.argv) > 5 else "5"
cues = {"math": ("got", "lost"), "code": ("sort", "reverse"), "mc": ("Biggest?", "Smallest?")}
if fam not in cues:
    sys.exit(f"family must be one of {', '.join(cues)}")
dump = subprocess.run([t2, "tasks", "dump", "--family", fam, "--mix", "pretrain", "--split", "test",
                       "--n", n, "--seed", seed, "--format", "jsonl"],
                      capture_output=True, text=True, check=True).stdout
stats = collections.Counter()
for line in dump.splitlines():
    d = json.loads(line)
    words = d["prompt"].replace(".", " ").split()
    cue = next((c for c in cues[fam] if c in words), None)
    if cue is None:  # the uncued family prompt, or another skill (max, min, dedupe)
        continue
    out = subprocess.run([t2, "run", "-m", model, "-t", "0", "-n", "128", "-j", "1",
                          "-p", d["prompt"] + "\n"], capture_output=True, check=True)
    text = out.stdout.decode("latin-1")
    head = " " + d["prompt"] + "\n"  # the byte tokenizer's dummy prefix space, prompt, newline
    gen = text[len(head):].split("\n")[0] if text.startswith(head) else ""
    stats[cue] += 1
    stats[cue + " ok"] += gen.strip() == d["answer"]
print(fam + ": " + ", ".join(f"{c} {stats[c + ' ok']}/{stats[c]} = "
                             f"{100 * stats[c + ' ok'] / max(1, stats[c]):.1f} %" for c in cues[fam]))
