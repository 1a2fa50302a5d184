#!/usr/bin/python3
"""grad_check.py - T2's training gradients vs. PyTorch autograd (float64).

For each case a random model is written by `t2 init` (GQA, odd sizes), `train_dump` runs one
forward + backward of T2's trainer on a fixed batch with per-token weights (zeros, negatives,
ignored targets) and dumps the loss and gradients; the same loss is then built in float64 on
the weights read by the independent reference tests/ref_llama.py (its GGUF loader and forward)
and differentiated by autograd:

    loss = sum_t w_t * (-log softmax(logits_t)[y_t]) / norm

Models: llama (GQA, tied and separate classifiers), qwen2 (Q/K/V biases, rotation of halves),
qwen3 (per-head Q/K RMSNorm whose backward the trainer has; head dim 8 != dim / heads 6).
Full mode: every weight gradient. SVF mode: the gradient of every p, with the target matrices
rebuilt from the same U, sigma, Vt that T2 used: W' = U diag(sigma*m*c) Vt, m = act(p),
c = sum(sigma) / sum(sigma*m).

Metric per tensor: max|t2 - ref| / max|ref|, must be <= 1e-3. Prints a table (max over
tensors of each kind). Exit 0 pass, 1 fail, 77 skip (no torch).

Environment: T2_BIN (folder with t2 and train_dump).
"""

import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SKIP = 77
TOL = 1e-3

try:
    import numpy as np
    import torch
except ImportError as e:  # pragma: no cover
    print("SKIP: %s" % e)
    sys.exit(SKIP)

sys.path.insert(0, HERE)
import ref_llama  # noqa: E402

KIND_TO_REF = {"attn_q": "wq", "attn_k": "wk", "attn_v": "wv", "attn_output": "wo",
               "ffn_gate": "w1", "ffn_down": "w2", "ffn_up": "w3",
               "attn_norm": "attn_norm", "ffn_norm": "ffn_norm"}


def run(argv):
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300)
    if r.returncode != 0:
        raise SystemExit("command failed (%d): %s\n%s" % (r.returncode, " ".join(argv),
                                                          r.stderr.decode(errors="replace")))


def read_f32(path, shape):
    a = np.fromfile(path, dtype="<f4")
    return torch.from_numpy(a.astype(np.float64)).reshape(shape)


def read_batch(d):
    with open(os.path.join(d, "batch.txt")) as f:
        B, T, norm, loss = f.readline().split()
        rows = [line.split() for line in f]
    B, T = int(B), int(T)
    inp = [int(r[0]) for r in rows]
    tgt = [int(r[1]) for r in rows]
    w = [float(r[2]) for r in rows]
    return B, T, float(norm), float(loss), inp, tgt, w


def weighted_loss(model, B, T, norm, inp, tgt, w):
    total = torch.zeros((), dtype=torch.float64)
    for b in range(B):
        logits = ref_llama.forward(model, inp[b * T:(b + 1) * T])
        logp = torch.log_softmax(logits, dim=-1)
        for t in range(T):
            y = tgt[b * T + t]
            if y >= 0 and w[b * T + t] != 0.0:
                total = total - w[b * T + t] * logp[t, y]
    return total / norm


def ref_tensor(model, name):
    """The reference model's tensor for a GGUF name."""
    if name == "token_embd.weight":
        return model.tok_emb
    if name == "output.weight":
        return model.wcls
    if name == "output_norm.weight":
        return model.norm
    _, l, kind, _ = name.split(".")
    return model.layers[int(l)][KIND_TO_REF[kind]]


def kind_of(name):
    parts = name.split(".")
    return parts[2] if parts[0] == "blk" else parts[0]


def rel_err(got, ref):
    den = float(ref.abs().max())
    diff = float((got - ref).abs().max())
    return diff / den if den > 0 else diff


def check_full(t2bin, model_path, work, tag, results):
    d = os.path.join(work, tag)
    os.makedirs(d)
    run([os.path.join(t2bin, "train_dump"), model_path, d, "--B", "3", "--T", "7"])
    B, T, norm, c_loss, inp, tgt, w = read_batch(d)
    model = ref_llama.load_model(model_path)
    leaves = [model.tok_emb, model.norm] + ([] if model.tied else [model.wcls])
    for L in model.layers:
        leaves += list(L.values())
    for t in leaves:
        t.requires_grad_(True)
    loss = weighted_loss(model, B, T, norm, inp, tgt, w)
    loss.backward()
    lerr = abs(float(loss) - c_loss) / max(1.0, abs(float(loss)))
    results.append((tag, "loss", lerr, "%.6f vs %.6f" % (c_loss, float(loss))))
    with open(os.path.join(d, "manifest.txt")) as f:
        for line in f:
            _, name, rows, cols, fn = line.split()
            rows, cols = int(rows), int(cols)
            shape = (cols,) if rows == 1 and name.endswith("norm.weight") else (rows, cols)
            got = read_f32(os.path.join(d, fn), shape)
            ref = ref_tensor(model, name).grad
            results.append((tag, kind_of(name), rel_err(got, ref), name))


def svf_scale(p, s, act, max_mult):
    m = torch.sigmoid(p) * max_mult if act == "sigmoid" else p
    a = s * m
    return a * (s.sum() / a.sum())


def check_svf(t2bin, model_path, work, tag, targets, act, results):
    d = os.path.join(work, tag)
    os.makedirs(d)
    argv = [os.path.join(t2bin, "train_dump"), model_path, d, "--B", "2", "--T", "9",
            "--svf", targets, "--act", act]
    if act == "sigmoid":
        argv += ["--max-mult", "2"]
    run(argv)
    B, T, norm, c_loss, inp, tgt, w = read_batch(d)
    model = ref_llama.load_model(model_path)
    entries = []
    with open(os.path.join(d, "manifest.txt")) as f:
        _, act_name, max_mult = f.readline().split()
        max_mult = float(max_mult)
        for line in f:
            _, l, kind, rows, cols, r, pre = line.split()
            l, rows, cols, r = int(l), int(rows), int(cols), int(r)
            U = read_f32(os.path.join(d, pre + ".U.f32"), (rows, r))
            s = read_f32(os.path.join(d, pre + ".s.f32"), (r,))
            Vt = read_f32(os.path.join(d, pre + ".Vt.f32"), (r, cols))
            p = read_f32(os.path.join(d, pre + ".p.f32"), (r,)).requires_grad_(True)
            dp = read_f32(os.path.join(d, pre + ".dp.f32"), (r,))
            W = U @ torch.diag(svf_scale(p, s, act_name, max_mult)) @ Vt
            model.layers[l][KIND_TO_REF[kind]] = W
            entries.append((l, kind, p, dp))
    loss = weighted_loss(model, B, T, norm, inp, tgt, w)
    loss.backward()
    lerr = abs(float(loss) - c_loss) / max(1.0, abs(float(loss)))
    results.append((tag, "loss", lerr, "%.6f vs %.6f" % (c_loss, float(loss))))
    for l, kind, p, dp in entries:
        results.append((tag, "svf_p." + kind, rel_err(dp, p.grad), "blk.%d.%s" % (l, kind)))


def main():
    torch.set_num_threads(1)
    t2bin = os.environ.get("T2_BIN") or os.path.join(HERE, "..", "build-train", "bin")
    t2 = os.path.join(t2bin, "t2")
    if not os.access(t2, os.X_OK) or not os.access(os.path.join(t2bin, "train_dump"), os.X_OK):
        print("FAIL: t2 / train_dump not found in %s (set T2_BIN)" % t2bin)
        return 1
    results = []
    with tempfile.TemporaryDirectory(prefix="t2_gradcheck_") as work:
        gqa = os.path.join(work, "gqa.gguf")
        run([t2, "init", "-o", gqa, "--dim", "36", "--hidden", "50", "--layers", "2",
             "--heads", "6", "--kv-heads", "2", "--vocab", "37", "--seq-len", "16",
             "--seed", "11"])
        tied = os.path.join(work, "tied.gguf")
        run([t2, "init", "-o", tied, "--dim", "20", "--hidden", "33", "--layers", "2",
             "--heads", "2", "--kv-heads", "1", "--vocab", "29", "--seq-len", "12",
             "--tied", "--seed", "5"])
        # qwen2 (Q/K/V biases, rotation of halves); qwen3 (per-head Q/K RMSNorm, no biases)
        # with a head dim (8) that is not dim / heads (6)
        qwen2 = os.path.join(work, "qwen2.gguf")
        run([t2, "init", "-o", qwen2, "--arch", "qwen2", "--dim", "36", "--hidden", "50",
             "--layers", "2", "--heads", "6", "--kv-heads", "2", "--vocab", "37",
             "--seq-len", "16", "--seed", "13"])
        qwen3 = os.path.join(work, "qwen3.gguf")
        run([t2, "init", "-o", qwen3, "--arch", "qwen3", "--dim", "36", "--hidden", "50",
             "--layers", "2", "--heads", "6", "--kv-heads", "2", "--head-dim", "8",
             "--vocab", "37", "--seq-len", "16", "--seed", "17"])
        check_full(t2bin, gqa, work, "full-gqa", results)
        check_full(t2bin, tied, work, "full-tied", results)
        check_svf(t2bin, gqa, work, "svf-mlp", "mlp", "sigmoid", results)
        check_svf(t2bin, gqa, work, "svf-all", "all", "linear", results)
        check_svf(t2bin, qwen2, work, "q2-svf-all", "all", "sigmoid", results)
        check_svf(t2bin, qwen3, work, "q3-svf-all", "all", "sigmoid", results)
        check_svf(t2bin, qwen3, work, "q3-svf-lin", "all", "linear", results)
        check_full(t2bin, qwen3, work, "q3-full", results)

    # table: max relative error per (case, kind)
    table = {}
    for case, kind, err, _ in results:
        key = (case, kind)
        table[key] = max(table.get(key, 0.0), err)
    print("%-10s %-16s %s" % ("case", "tensor kind", "max rel err"))
    for (case, kind), err in table.items():
        print("%-10s %-16s %.3e%s" % (case, kind, err, "" if err <= TOL else "  FAIL"))
    for case in ("q2-svf-all", "q3-svf-all", "q3-svf-lin", "q3-full"):
        if not any(c == case and k != "loss" for c, k, _, _ in results):
            print("FAIL %s: no gradients compared" % case)
            return 1
    bad = [(c, k, e, n) for c, k, e, n in results if not e <= TOL]
    for c, k, e, n in bad:
        print("FAIL %s %s: rel err %.3e (%s)" % (c, k, e, n))
    print("grad_check: %s (%d tensors, tolerance %g)" % ("FAIL" if bad else "PASS", len(results),
                                                       TOL))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
