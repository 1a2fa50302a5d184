#!/usr/bin/python3
"""svf_parity.py - T2's SVF (factors, experts, mixtures; merged and factored paths) against an
independent PyTorch computation of the method, docs/DESIGN.md §3:

    s  = sigmoid(p') * max_mult,  p' = sum_k alpha_k p_k
    W' = U diag(sigma * s) V^T * (sum sigma / sum(sigma * s))      (torch's own float64 SVD of W)

Cases, on stories260K (llama2.c) and on a `t2 init` model with grouped-query attention and a
separate classifier, every matrix type targeted:
  uniform   an expert of constant p (0.1 and -3.0): logits equal the base model's (<= 1e-4 of
            the logit scale) in both apply paths, batch and step; greedy text identical
  random    a random expert and a random two-expert mixture: W' written by `t2 expert merge`
            equals the torch formula (<= 1e-4 of max|W|); T2's logits with --mix (merged and
            factored, batch and step) equal the reference forward on the torch W' (<= 1e-4)
Exit 0 pass, 1 fail, 77 skip (no torch / assets).
"""
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SKIP = 77
TOL = 1e-4

try:
    import numpy as np
    import torch
except ImportError as e:
    print("SKIP: needs numpy and torch (Debian python3-torch): %s" % e)
    sys.exit(SKIP)
sys.path.insert(0, HERE)
import ref_llama  # noqa: E402

BIN = os.environ.get("T2_BIN", os.path.join(HERE, "..", "build", "bin"))
ASSETS = os.environ.get("T2_ASSETS", os.path.join(HERE, "..", "..", "shared", "assets"))
T2 = os.path.join(BIN, "t2")
TARGETS = ["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"]
REF_KEYS = {"attn_q": "wq", "attn_k": "wk", "attn_v": "wv", "attn_output": "wo",
            "ffn_gate": "w1", "ffn_up": "w3", "ffn_down": "w2"}
passed = failed = 0


def t2(*args):
    r = subprocess.run([T2] + [str(a) for a in args], capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        raise RuntimeError("t2 %s failed (%d): %s" % (" ".join(map(str, args)), r.returncode,
                                                      r.stderr.strip()))
    return r.stdout


def check(name, ok, detail):
    global passed, failed
    print("%s %-58s %s" % ("ok  " if ok else "FAIL", name, detail), flush=True)
    if ok:
        passed += 1
    else:
        failed += 1


def t2_logits(model, tokens, mode, extra, tmp):
    out = os.path.join(tmp, "l.f32")
    t2("logits", "-m", model, "--tokens", ",".join(map(str, tokens)), "--mode", mode, "-o", out,
       *extra)
    a = np.fromfile(out, dtype="<f4").astype(np.float64)
    return a.reshape(len(tokens), -1)


def expert_p(path):
    g = ref_llama.GGUFFile(path)
    return {n: torch.from_numpy(g.tensor(n).copy()) for n in g.tensors}, g.get_float("t2.max_mult", 1.0)


def torch_merged(W, p, max_mult):
    U, S, Vh = torch.linalg.svd(W, full_matrices=False)
    s = torch.sigmoid(p) * max_mult
    return U @ torch.diag(S * s) @ Vh * (S.sum() / (S * s).sum())


def run_model(name, model, tmp, tokens, golden=None):
    f = os.path.join(tmp, name + "-f.gguf")
    out = t2("decompose", "-m", model, "-o", f, "--targets", "all")
    err = float(out.strip().split()[-1])
    check("%s: decompose reconstruction error" % name, err < 1e-5, "worst %.3g" % err)
    ref = ref_llama.load_model(model)
    base = {m: t2_logits(model, tokens, m, [], tmp) for m in ("batch", "step")}
    scale = max(1.0, float(np.abs(base["batch"]).max()))
    # uniform experts: no change
    for val in ("0.1", "-3.0"):
        e = os.path.join(tmp, "u.gguf")
        t2("expert", "init", "-m", model, "--factors", f, "-o", e, "--name", "u", "--init", val,
           "--targets", "all")
        for apply in ("merged", "factored"):
            for mode in ("batch", "step"):
                got = t2_logits(model, tokens, mode, ["--factors", f, "--expert", e, "--apply", apply], tmp)
                d = float(np.abs(got - base[mode]).max()) / scale
                check("%s: uniform p=%s %s %s vs base" % (name, val, apply, mode), d <= TOL,
                      "rel %.2e" % d)
            if golden:
                txt, z = golden
                o = t2("run", "-m", model, "-z", z, "-t", "0", "-n", "200", "--factors", f,
                       "--expert", e, "--apply", apply)
                check("%s: uniform p=%s %s greedy text = golden" % (name, val, apply),
                      o == txt, "%d bytes" % len(o))
    # random expert, random mixture
    ea, eb = os.path.join(tmp, "alpha.gguf"), os.path.join(tmp, "beta.gguf")
    t2("expert", "init", "-m", model, "--factors", f, "-o", ea, "--name", "alpha", "--noise", "0.8",
       "--seed", "11", "--targets", "all")
    t2("expert", "init", "-m", model, "--factors", f, "-o", eb, "--name", "beta", "--init", "-0.4",
       "--noise", "1.0", "--seed", "12", "--targets", "all", "--max-mult", "2")
    # the two experts differ in max_mult: a mixture of them must be refused
    r = subprocess.run([T2, "logits", "-m", model, "--tokens", "1,2", "-o", os.path.join(tmp, "x"),
                        "--factors", f, "--mix", "alpha=1,beta=1"], capture_output=True, text=True)
    check("%s: mixture of experts with different max_mult refused" % name,
          r.returncode != 0 and "max_mult" in r.stderr, r.stderr.strip()[:90])
    t2("expert", "init", "-m", model, "--factors", f, "-o", eb, "--name", "beta", "--init", "-0.4",
       "--noise", "1.0", "--seed", "12", "--targets", "all")
    pa, mm = expert_p(ea)
    pb, _ = expert_p(eb)
    for label, mix, alphas in (("expert alpha", ["--expert", ea], {"alpha": 1.0}),
                               ("mixture 0.7*alpha+0.6*beta", ["--mix", "alpha=0.7,beta=0.6",
                                                              "--experts", tmp],
                                {"alpha": 0.7, "beta": 0.6})):
        merged = os.path.join(tmp, "merged.gguf")
        t2("expert", "merge", "-m", model, "--factors", f, "-o", merged, *mix)
        got = ref_llama.GGUFFile(merged)
        refm = ref_llama.load_model(model)  # weights to replace with the torch W'
        worst = 0.0
        for li, L in enumerate(ref.layers):
            for tname in TARGETS:
                key = "blk.%d.%s.svf_p" % (li, tname)
                p = alphas["alpha"] * pa[key] + (alphas.get("beta", 0.0) * pb[key] if "beta" in alphas else 0)
                Wt = torch_merged(L[REF_KEYS[tname]], p, mm)
                W2 = torch.from_numpy(got.tensor("blk.%d.%s.weight" % (li, tname)).copy())
                d = float((W2 - Wt).abs().max() / L[REF_KEYS[tname]].abs().max())
                worst = max(worst, d)
                refm.layers[li][REF_KEYS[tname]] = Wt
        check("%s: %s: W' (t2 expert merge) vs torch formula" % (name, label), worst <= TOL,
              "worst rel %.2e over %d matrices" % (worst, len(TARGETS) * len(ref.layers)))
        want = ref_llama.forward(refm, tokens).numpy()
        sc = max(1.0, float(np.abs(want).max()))
        for apply in ("merged", "factored"):
            for mode in ("batch", "step"):
                g2 = t2_logits(model, tokens, mode, ["--factors", f, "--apply", apply] + mix, tmp)
                d = float(np.abs(g2 - want).max()) / sc
                check("%s: %s %s %s logits vs torch" % (name, label, apply, mode), d <= TOL,
                      "rel %.2e (scale %.1f)" % (d, sc))


def main():
    if not os.path.exists(T2):
        print("t2 binary not found at %s" % T2)
        return 1
    rng = np.random.default_rng(7)
    ran = False
    with tempfile.TemporaryDirectory() as tmp:
        m = os.path.join(ASSETS, "models", "stories260K.bin")
        z = os.path.join(ASSETS, "models", "tok512.bin")
        g = os.path.join(ASSETS, "models", "stories260K_greedy200_expected.txt")
        if all(os.path.exists(p) for p in (m, z, g)):
            toks = [1] + list(rng.integers(3, 512, size=40))
            run_model("stories260K", m, tmp, toks, (open(g).read() + "\n", z))
            ran = True
        else:
            print("SKIP stories260K cases: assets not found under %s" % ASSETS)
        gm = os.path.join(tmp, "gqa.gguf")
        t2("init", "-o", gm, "--dim", "84", "--hidden", "230", "--layers", "2", "--heads", "6",
           "--kv-heads", "2", "--vocab", "301", "--seq-len", "128", "--seed", "5")
        toks = [1] + list(rng.integers(0, 301, size=40))
        run_model("init-gqa", gm, tmp, toks)
        ran = True
    print("%d passed, %d failed" % (passed, failed))
    if not ran:
        return SKIP
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
