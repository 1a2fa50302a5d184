#!/usr/bin/python3
"""make_llama2c.py - write a llama2.c checkpoint with random (seeded) weights, for tests.

    make_llama2c.py OUT.bin --version 0|1 --dim D --hidden H --layers L --heads NH
                    [--kv-heads NKV] --vocab V [--seq-len S] [--separate] [--seed N]

Formats (written from the format description, little-endian):
  v0 (legacy): int32 dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size (negative =
      a separate classifier follows), seq_len; fp32 token_embedding (V, D), rms_att (L, D),
      wq (L, D, D), wk (L, KV, D), wv (L, KV, D), wo (L, D, D), rms_ffn (L, D), w1 (L, H, D),
      w2 (L, D, H), w3 (L, H, D), rms_final (D), freq_cis_real (S, hd/2), freq_cis_imag
      (S, hd/2), [wcls (V, D)]. Matrices are stored (out, in).
  v1: uint32 magic 0x616b3432, int32 version 1, the 7 int32 params (vocab positive), uint8
      shared_classifier, zeros up to 256 bytes; fp32 attention norms of all layers, ffn norms,
      final norm, tok_embeddings, wq (all layers), wk, wv, wo, w1, w2, w3, [output].

Weights: projections ~ N(0, (g/sqrt(fan_in))^2) with g = 1.5 for wq/wk (sharp attention, so
RoPE / head-mapping errors show) and 1 otherwise; embedding ~ N(0, 1) (scaled by 2/sqrt(dim)
when it is also the classifier); norm weights ~ 1 + N(0, 0.1^2); separate classifier
~ N(0, (2/sqrt(dim))^2). Logits come out O(1-20).
Can also be used as a library: make_weights(...) and write_v0/write_v1.
"""

import argparse
import struct
import sys

import numpy as np


def make_weights(dim, hidden, layers, heads, kv_heads, vocab, seed, separate):
    if dim % heads or (dim // heads) % 2 or heads % kv_heads:
        raise SystemExit("make_llama2c: need dim %% heads == 0, even head_dim, "
                         "heads %% kv_heads == 0")
    rng = np.random.default_rng(seed)
    kv = kv_heads * (dim // heads)

    def mat(n_out, n_in, gain):
        return (rng.standard_normal((layers, n_out, n_in)) * (gain / np.sqrt(n_in))).astype("<f4")

    def normw(*shape):
        return (1.0 + 0.1 * rng.standard_normal(shape)).astype("<f4")

    w = {}
    w["emb"] = rng.standard_normal((vocab, dim)).astype("<f4")
    w["rms_att"] = normw(layers, dim)
    # large q/k gains make the attention sharp, so that RoPE and head mapping errors show
    w["wq"] = mat(dim, dim, 1.5)
    w["wk"] = mat(kv, dim, 1.5)
    w["wv"] = mat(kv, dim, 1.0)
    w["wo"] = mat(dim, dim, 1.0)
    w["rms_ffn"] = normw(layers, dim)
    w["w1"] = mat(hidden, dim, 1.0)
    w["w2"] = mat(dim, hidden, 1.0)
    w["w3"] = mat(hidden, dim, 1.0)
    w["rms_final"] = normw(dim)
    if separate:
        w["wcls"] = (rng.standard_normal((vocab, dim)) * (2.0 / np.sqrt(dim))).astype("<f4")
    else:
        # shared: the embedding doubles as the classifier; keep its logits O(10)
        w["emb"] *= np.float32(2.0 / np.sqrt(dim))
    return w


def _params(w, seq_len, heads, kv_heads):
    vocab, dim = w["emb"].shape
    layers, hidden, _ = w["w1"].shape
    return [dim, hidden, layers, heads, kv_heads, vocab, seq_len]


def write_v0(path, w, seq_len, heads, kv_heads):
    p = _params(w, seq_len, heads, kv_heads)
    separate = "wcls" in w
    if separate:
        p[5] = -p[5]
    hd = p[0] // heads
    i = np.arange(0, hd, 2, dtype=np.float64)
    ang = np.arange(seq_len, dtype=np.float64)[:, None] * (10000.0 ** (-(i / hd)))[None, :]
    with open(path, "wb") as f:
        f.write(struct.pack("<7i", *p))
        for k in ("emb", "rms_att", "wq", "wk", "wv", "wo", "rms_ffn", "w1", "w2", "w3",
                  "rms_final"):
            f.write(w[k].astype("<f4").tobytes())
        f.write(np.cos(ang).astype("<f4").tobytes())
        f.write(np.sin(ang).astype("<f4").tobytes())
        if separate:
            f.write(w["wcls"].astype("<f4").tobytes())


def write_v1(path, w, seq_len, heads, kv_heads):
    p = _params(w, seq_len, heads, kv_heads)
    separate = "wcls" in w
    hdr = struct.pack("<Ii7iB", 0x616B3432, 1, *p, 0 if separate else 1)
    hdr += b"\0" * (256 - len(hdr))
    with open(path, "wb") as f:
        f.write(hdr)
        for k in ("rms_att", "rms_ffn", "rms_final", "emb", "wq", "wk", "wv", "wo", "w1", "w2",
                  "w3"):
            f.write(w[k].astype("<f4").tobytes())  # (L, ...) arrays are already layer-major
        if separate:
            f.write(w["wcls"].astype("<f4").tobytes())


def main(argv=None):
    ap = argparse.ArgumentParser(description="write a random llama2.c checkpoint")
    ap.add_argument("output")
    ap.add_argument("--version", type=int, choices=(0, 1), default=0)
    ap.add_argument("--dim", type=int, required=True)
    ap.add_argument("--hidden", type=int, required=True)
    ap.add_argument("--layers", type=int, required=True)
    ap.add_argument("--heads", type=int, required=True)
    ap.add_argument("--kv-heads", type=int)
    ap.add_argument("--vocab", type=int, required=True)
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--separate", action="store_true", help="separate classifier (else shared)")
    ap.add_argument("--seed", type=int, default=1234)
    a = ap.parse_args(argv)
    kvh = a.kv_heads or a.heads
    w = make_weights(a.dim, a.hidden, a.layers, a.heads, kvh, a.vocab, a.seed, a.separate)
    (write_v0 if a.version == 0 else write_v1)(a.output, w, a.seq_len, a.heads, kvh)
    print("wrote %s (llama2.c v%d, %s classifier)"
          % (a.output, a.version, "separate" if a.separate else "shared"), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
