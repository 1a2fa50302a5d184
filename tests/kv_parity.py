#!/usr/bin/python3
"""kv_parity.py - logits with the F16 and Q8_0 KV caches against the F32 cache.

For each model (stories260K, head dim 8: the portable kernels; `t2 init` models with head dim
64: the SIMD kernels, llama and qwen3), N tokens (fixed seed, N > 2 attention segments of 256)
are run through `t2 logits --kv-type T` in batch mode (tiled prompt attention) and step mode
(decode attention split over segments), with 1 and 2 threads. Checked:
  - F32 batch vs F32 step, and 1 vs 2 (vs 3) threads for each cache type and mode: results
    independent of the split of the work (threads: bit-identical; batch vs step: within 1e-4
    relative, the matmul and attention paths differ);
  - F16 and Q8_0 vs F32 (same mode): max|x - ref| / max(1, max|ref|) <= BOUND[type], and the
    argmax of each row agrees with F32's in at least 90 % of the rows.
Environment: T2_BIN (default build/bin), T2_ASSETS. Exit 0 pass, 1 fail, 77 skip.
"""
import os
import subprocess
import sys
import tempfile

try:
    import numpy as np
except ImportError:
    print("SKIP: numpy not available")
    sys.exit(77)

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.environ.get("T2_BIN", "build/bin")
T2 = os.path.join(BIN, "t2")
ASSETS = os.environ.get("T2_ASSETS") or os.path.join(HERE, "..", "..", "shared", "assets")
N = 600
BOUND = {"f16": 5e-3, "q8_0": 8e-2}
fails = 0


def run(argv):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise RuntimeError("%s: exit %d: %s" % (" ".join(argv[:3]), r.returncode, r.stderr))


def logits(tmp, model, vocab, toks, kv, mode, threads):
    out = os.path.join(tmp, "l.f32")
    run([T2, "logits", "-m", model, "--tokens", ",".join(map(str, toks)), "-o", out,
         "--mode", mode, "--kv-type", kv, "-j", str(threads)])
    return np.fromfile(out, dtype=np.float32).reshape(len(toks), vocab)


def rel(a, b):
    return float(np.max(np.abs(a - b)) / max(1.0, float(np.max(np.abs(b)))))


def check(name, ok, detail):
    global fails
    print("%s %s: %s" % ("ok  " if ok else "FAIL", name, detail), flush=True)
    fails += 0 if ok else 1


def case(tmp, tag, model, vocab, n=N):
    rng = np.random.default_rng(20261205)
    toks = [1] + [int(t) for t in rng.integers(3, vocab, n - 1)]
    ref = logits(tmp, model, vocab, toks, "f32", "step", 1)
    ref2 = logits(tmp, model, vocab, toks, "f32", "step", 2)
    check(tag + " f32 step 1 vs 2 threads", np.array_equal(ref, ref2), "bit-identical")
    bat = logits(tmp, model, vocab, toks, "f32", "batch", 2)
    for kv, mode in (("f16", "step"), ("f16", "batch"), ("q8_0", "step"), ("f32", "batch")):
        xs = [logits(tmp, model, vocab, toks, kv, mode, j) for j in (1, 3)]
        same = all(np.array_equal(xs[0], x) for x in xs[1:])
        same = same and (kv != "f32" or np.array_equal(xs[0], bat))
        check("%s %s %s 1 vs 2 vs 3 threads" % (tag, kv, mode), same, "bit-identical")
    r = rel(bat, ref)
    check(tag + " f32 batch vs step", r <= 1e-4, "rel %.2e (bound 1e-4)" % r)
    for kv in ("f16", "q8_0"):
        for mode in ("step", "batch"):
            x = logits(tmp, model, vocab, toks, kv, mode, 2)
            base = ref if mode == "step" else bat
            r = rel(x, base)
            agree = float(np.mean(np.argmax(x, 1) == np.argmax(base, 1)))
            check("%s %s %s vs f32" % (tag, kv, mode), r <= BOUND[kv] and agree >= 0.90,
                  "rel %.2e (bound %.0e), argmax agrees %.1f %%" % (r, BOUND[kv], 100 * agree))


def main():
    if not os.access(T2, os.X_OK):
        print("SKIP: %s not built" % T2)
        return 77
    with tempfile.TemporaryDirectory() as tmp:
        for tag, arch in (("llama-hd64", "llama"), ("qwen3-hd64", "qwen3")):
            m = os.path.join(tmp, tag + ".gguf")
            run([T2, "init", "-o", m, "--arch", arch, "--dim", "256", "--hidden", "512",
                 "--layers", "2", "--heads", "4", "--kv-heads", "2", "--vocab", "512",
                 "--seq-len", "1024", "--seed", "7"])
            case(tmp, tag, m, 512)
        st = os.path.join(ASSETS, "models", "stories260K.bin")
        tok = os.path.join(ASSETS, "models", "tok512.bin")
        if os.path.exists(st) and os.path.exists(tok):
            g = os.path.join(tmp, "st.gguf")
            run([T2, "convert", st, g, "-z", tok])
            case(tmp, "stories260K", g, 512, 512)
        else:
            print("(stories260K not found: its case skipped)")
    print("%d failed" % fails)
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
