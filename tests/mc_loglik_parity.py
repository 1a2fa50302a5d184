#!/usr/bin/python3
"""mc_loglik_parity.py - `t2 eval --score loglik` vs. the float64 PyTorch reference (ref_llama.py).

A tiny byte-level model is trained for a few steps by `t2 train` (no assets needed); then
    t2 eval -m MODEL --task mc --score loglik --csv ITEMS.csv --choices-csv CHOICES.csv
scores the multiple-choice family by each choice's log-likelihood. For every choice the
reference runs ref_llama.forward() on the token ids T2 reports and sums log_softmax over the
continuation (the last `tokens` ids), after the context and after the answer-only context;
the sums must agree within 1e-5 relative (plus 1e-6 absolute): T2 runs in float32 (its vector
exp in attention is within ~1 ulp), and over ARC's prompts of up to 512 tokens the sums moved by
up to 1.2e-6 relative once attention was vectorised, against errors of a wrong token or position
that move them by whole units. The continuation's bytes, decoded
from the ids independently (byte-level: id - 3), must be "the answer is (X)" with X the choice's
letter. Each item's predictions per score (sum, token, char, uncond, pmi) are recomputed from the
reference values and must equal T2's, unless two choices are within 1e-6 of each other.
With ../shared/assets, ARC-Easy on stories260K (tok512) is checked the same way (sums only).

Environment: T2_BIN, T2_ASSETS. Exit 0 = passed, 1 = failed, 77 = skipped (no torch).
"""
import csv
import math
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SKIP = 77
TOL = 1e-5
NORMS = ["sum", "token", "char", "uncond", "pmi"]


def fail(msg):
    print("FAIL: " + msg, flush=True)
    sys.exit(1)


def run(argv, env=None):
    p = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env)
    if p.returncode != 0:
        fail("%s exited %d:\n%s%s" % (" ".join(argv), p.returncode, p.stdout, p.stderr))
    return p.stdout


def no_mpi_leaks():
    """t2 train runs MPI_Init: Open MPI's own allocations at exit are not T2's leaks (the
    sanitizer build would report them); `t2 eval` keeps leak detection."""
    env = dict(os.environ)
    opts = env.get("ASAN_OPTIONS", "")
    env["ASAN_OPTIONS"] = (opts + ":" if opts else "") + "detect_leaks=0"
    return env


def ref_sum(ref, torch, model, ids, n_cont):
    logits = ref.forward(model, ids)  # (n, V) float64
    lp = torch.log_softmax(logits, dim=-1)
    n = len(ids)
    return sum(float(lp[t - 1, ids[t]]) for t in range(n - n_cont, n))


def close(a, b):
    return abs(a - b) <= TOL * max(1.0, abs(b)) + TOL


def check_choices(ref, torch, model, choices_csv, byte_level):
    rows = list(csv.DictReader(open(choices_csv)))
    if not rows:
        fail(choices_csv + ": no rows")
    vals = {}
    for r in rows:
        ids = [int(x) for x in r["text_tokens"].split()]
        uids = [int(x) for x in r["uncond_text_tokens"].split()]
        nt, nu = int(r["tokens"]), int(r["uncond_tokens"])
        s = ref_sum(ref, torch, model, ids, nt)
        u = ref_sum(ref, torch, model, uids, nu)
        if not close(float(r["sum"]), s) or not close(float(r["uncond"]), u):
            fail("%s choice %s: t2 sum %s uncond %s, reference %.12g %.12g" %
                 (r["id"], r["choice"], r["sum"], r["uncond"], s, u))
        if byte_level:
            text = bytes(i - 3 for i in ids[len(ids) - nt:]).decode()
            want = "the answer is (%s)" % "ABCD"[int(r["choice"])]
            if text != want or int(r["bytes"]) != len(want):
                fail("%s choice %s: continuation %r (%s bytes), want %r" %
                     (r["id"], r["choice"], text, r["bytes"], want))
            utext = bytes(i - 3 for i in uids[len(uids) - nu:]).decode()
            if utext.strip() != want:
                fail("%s: answer-only continuation %r" % (r["id"], utext))
        vals.setdefault(r["id"], []).append((s, u, nt, int(r["bytes"])))
    return vals


def check_preds(items_csv, vals):
    checked = 0
    for r in csv.DictReader(open(items_csv)):
        v = vals.get(r["id"])
        if v is None:
            fail(r["id"] + ": no choices")
        for norm in NORMS:
            sc = [s if norm == "sum" else s / nt if norm == "token" else s / nb if norm == "char"
                  else u if norm == "uncond" else s - u for (s, u, nt, nb) in v]
            best = max(range(len(sc)), key=lambda i: (sc[i], -i))
            srt = sorted(sc, reverse=True)
            if len(srt) > 1 and srt[0] - srt[1] < 1e-6:
                continue
            want = int(best == int(r["answer"]))
            if int(r["correct_" + norm]) != want:
                fail("%s: correct_%s %s, reference %d" % (r["id"], norm, r["correct_" + norm],
                                                          want))
            checked += 1
    if checked == 0:
        fail("no prediction could be checked")
    return checked


def main():
    try:
        import torch  # noqa: F401
        sys.path.insert(0, HERE)
        import ref_llama as ref
    except ImportError as e:
        print("SKIP: needs /usr/bin/python3 with torch and numpy (%s)" % e)
        return SKIP
    t2 = os.path.join(os.environ.get("T2_BIN", "build/bin"), "t2")
    assets = os.environ.get("T2_ASSETS") or os.path.join(HERE, "..", "..", "shared", "assets")
    work = tempfile.mkdtemp(prefix="t2_mc_parity_")
    text = os.path.join(work, "t.txt")
    docs = run([t2, "tasks", "dump", "--family", "mc", "--n", "40", "--seed", "3"])
    open(text, "w").write(docs)
    model = os.path.join(work, "m.gguf")
    run([t2, "train", "-f", text, "-o", model, "--dim", "32", "--hidden", "64", "--layers", "2",
         "--heads", "4", "--ctx", "128", "--steps", "4", "-T", "64", "-j", "1",
         "--init-seed", "5"], env=no_mpi_leaks())
    items, choices = os.path.join(work, "items.csv"), os.path.join(work, "choices.csv")
    run([t2, "eval", "-m", model, "--task", "mc", "--n", "6", "--score", "loglik", "-j", "1",
         "--csv", items, "--choices-csv", choices])
    for args, code, msg in [(["--task", "math"], 1, "not a multiple-choice family"),
                            (["--task", "mc", "--score", "logprob"], 2, "is not gen or loglik"),
                            (["--task", "mc", "--norm", "max"], 2, "is not sum, token"),
                            (["--task", "mc", "--choices-csv", choices], 2, "needs --score")]:
        if "--score" not in args and "--choices-csv" not in args:
            args = args + ["--score", "loglik"]
        p = subprocess.run([t2, "eval", "-m", model, "--n", "2", "-j", "1"] + args,
                           capture_output=True, text=True, timeout=120)
        if p.returncode != code or msg not in p.stderr:
            fail("t2 eval %s: exit %d (want %d), stderr %r" % (" ".join(args), p.returncode,
                                                                code, p.stderr))
    m = ref.load_model(model)
    vals = check_choices(ref, torch, m, choices, True)
    n = check_preds(items, vals)
    print("mc: %d items, %d choices and %d predictions match the reference" %
          (len(vals), sum(len(v) for v in vals.values()), n))
    s260 = os.path.join(assets, "models", "stories260K.bin")
    tok = os.path.join(assets, "models", "tok512.bin")
    if os.path.exists(s260) and os.path.exists(os.path.join(assets, "data", "arc")):
        run([t2, "eval", "-m", s260, "-z", tok, "--task", "arc-easy", "--n", "4", "--score",
             "loglik", "-j", "1", "--data", os.path.join(assets, "data"), "--csv", items,
             "--choices-csv", choices])
        vals = check_choices(ref, torch, ref.load_model(s260), choices, False)
        n = check_preds(items, vals)
        print("arc-easy on stories260K: %d items, %d predictions match" % (len(vals), n))
    else:
        print("arc-easy part skipped: no %s or data/arc" % s260)
    return 0


if __name__ == "__main__":
    sys.exit(main())
