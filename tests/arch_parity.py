#!/usr/bin/python3
"""arch_parity.py - T2 logits vs. the float64 reference for every architecture T2 runs.

Two kinds of cases, run by logits_parity.py's machinery (batch and step modes, tolerance 1e-4
of the logit scale):
  hf-*    a random Hugging Face folder (make_hf.py: config.json + our own safetensors writer,
          F32/F16/BF16, one file or sharded with model.safetensors.index.json) converted by
          `t2 convert DIR OUT.gguf`; the reference runs the ORIGINAL folder (HF layout, rotary
          on halves), so the conversion -- including llama's Q/K row permutation and Llama-3
          rope scaling computed from config.json -- is checked. The reference also reads the
          converted GGUF with its own parser and must agree with itself on the folder.
  init-*  `t2 init --arch ...` random GGUFs, read by the reference from the file.

Environment and options as logits_parity.py (T2_BIN, --case, --keep, --list).
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import logits_parity as lp  # noqa: E402

TOL = 1e-4


def hf_model(tag, convert_type=None, **kw):
    """A make_hf.py folder, converted by t2; T2 runs the GGUF, the reference the folder."""
    def make(env):
        import numpy as np
        import make_hf
        import ref_llama
        src = make_hf.write_model(env.path("hf_" + tag), **kw)
        out = env.path("hf_%s.gguf" % tag)
        argv = [env.t2, "convert", src, out] + (["--type", convert_type] if convert_type else [])
        env.run(argv, "t2 convert")
        env.produced(out, "t2 convert")
        # an independent GGUF reader (the reference's) must see the same model
        toks = lp.prompt(kw.get("vocab", 211), 9)
        a = ref_llama.forward(ref_llama.load_model(src), toks).numpy()
        b = ref_llama.forward(ref_llama.load_model(out), toks).numpy()
        d = float(np.abs(a - b).max()) / max(1.0, float(np.abs(a).max()))
        if not d <= 1e-6:
            raise lp.CaseError("reference on the converted GGUF differs from the reference on "
                               "the folder by %.3e (relative)" % d)
        return out, src
    return make


def init_model(tag, arch, extra=(), dim=48, hidden=100, layers=2, heads=4, kv_heads=2,
               vocab=173, seq_len=96, seed=21, wtype="f32"):
    def make(env):
        out = env.path("init_%s.gguf" % tag)
        argv = [env.t2, "init", "-o", out, "--arch", arch, "--dim", str(dim), "--hidden",
                str(hidden), "--layers", str(layers), "--heads", str(heads), "--kv-heads",
                str(kv_heads), "--vocab", str(vocab), "--seq-len", str(seq_len), "--seed",
                str(seed), "--type", wtype] + list(extra)
        env.run(argv, "t2 init")
        env.produced(out, "t2 init")
        return out, out
    return make


def reconverted(tag, arch, extra=()):
    """t2 init, then `t2 convert` GGUF -> GGUF: T2 runs the copy, the reference the original
    (biases, Q/K norms, rope_freqs and head_dim must survive the writer)."""
    base = init_model("rc_" + tag, arch, extra)

    def make(env):
        src, _ = base(env)
        out = env.path("rc_%s.converted.gguf" % tag)
        env.run([env.t2, "convert", src, out], "t2 convert")
        env.produced(out, "t2 convert")
        return out, src
    return make


def rewrite_gguf(src, dst, add_kv, drop_tensors):
    """Copy GGUF src to dst with string/float keys added (add_kv: {key: value}) and tensors
    dropped: a small GGUF v3 writer of this test's own, for files t2 does not write."""
    import struct
    import ref_llama as R
    g = R.GGUFFile(src)

    def gstr(x):
        b = x.encode()
        return struct.pack("<Q", len(b)) + b
    types = dict(g.kv_types)
    values = dict(g.kv)
    for k, v in add_kv.items():
        types[k] = (R.GGUF_STRING if isinstance(v, str) else
                    R.GGUF_UINT32 if isinstance(v, int) else R.GGUF_FLOAT32)
        values[k] = v
    kv = []
    for k, v in values.items():
        t = types[k]
        if t == R.GGUF_STRING:
            kv.append(gstr(k) + struct.pack("<I", t) + gstr(v))
        elif t in R._GGUF_SCALAR and t != R.GGUF_BOOL:
            kv.append(gstr(k) + struct.pack("<I", t) + struct.pack(R._GGUF_SCALAR[t], v))
        else:
            raise lp.CaseError("rewrite_gguf: key %s of type %d not handled" % (k, t))
    tensors = [t for t in g.tensors.values() if t.name not in drop_tensors]
    infos, blobs, off = [], [], 0
    for t in tensors:
        raw = g.buf[t.data_start:t.data_start + t.nbytes]
        infos.append(gstr(t.name) + struct.pack("<I", len(t.ne)) +
                     b"".join(struct.pack("<Q", x) for x in t.ne) + struct.pack("<IQ", t.type, off))
        pad = -len(raw) % 32
        blobs.append(raw + bytes(pad))
        off += len(raw) + pad
    head = struct.pack("<IIQQ", R.GGUF_MAGIC, 3, len(tensors), len(kv)) + b"".join(kv) + \
        b"".join(infos)
    head += bytes(-len(head) % 32)
    with open(dst, "wb") as f:
        f.write(head + b"".join(blobs))


def llama3_metadata(seq_len=96):
    """t2 init --rope-scaling llama3, rewritten with llama.rope.scaling.* keys instead of the
    rope_freqs tensor: T2 and the reference compute the factors from the metadata."""
    base = init_model("l3m", "llama", ["--rope-scaling", "llama3"], seq_len=seq_len)

    def make(env):
        src, _ = base(env)
        out = env.path("init_l3_metadata.gguf")
        rewrite_gguf(src, out, {"llama.rope.scaling.type": "llama3",
                                "llama.rope.scaling.factor": 8.0,
                                "llama.rope.scaling.low_freq_factor": 1.0,
                                "llama.rope.scaling.high_freq_factor": 4.0,
                                "llama.rope.scaling.original_context_length": seq_len // 4},
                     {"rope_freqs.weight"})
        return out, out
    return make


CASES = [
    # Llama 3: GQA, rope scaling (original context 32 of 128: all three bands), separate output
    ("hf-llama3-scaling-f32", TOL, hf_model("l3", arch="llama", rope_scaling=True,
                                            rope_theta=500000.0, seed=1)),
    # Llama with its own head_dim (24, not 64/4), tied, BF16 in 3 shards
    ("hf-llama-hd24-tied-bf16-sharded", TOL, hf_model("lhd", arch="llama", head_dim=24,
                                                      tied=True, dtype="BF16", shards=3,
                                                      seed=2)),
    # Llama with attention_bias: the Q/K biases are permuted like the rows
    ("hf-llama-attention-bias", TOL, hf_model("lb", arch="llama", attention_bias=True, seed=8)),
    # Mistral (a llama GGUF): multi-query, theta 1e6, F16
    ("hf-mistral-mqa-f16(--type f32)", TOL, hf_model("mis", "f32", arch="mistral", kv_heads=1,
                                                     dtype="F16", rope_theta=1e6, seed=3)),
    ("hf-qwen2-bias-f32", TOL, hf_model("q2", arch="qwen2", rope_theta=1e6, eps=1e-6, seed=4)),
    # Qwen2 tied, BF16 shards, written as BF16 (exact; the default keeps the checkpoint's type)
    ("hf-qwen2-tied-bf16-sharded(--type bf16)", TOL,
     hf_model("q2t", convert_type="bf16", arch="qwen2", tied=True, dtype="BF16", shards=2,
              seed=5)),
    # Qwen3: Q/K norms, head_dim 24 != 64/4, F16
    ("hf-qwen3-hd24-f16", TOL, hf_model("q3", arch="qwen3", head_dim=24, dtype="F16",
                                        eps=1e-6, rope_theta=1e6, seed=6)),
    ("hf-qwen3-tied-bf16-sharded", TOL, hf_model("q3t", arch="qwen3", tied=True, dtype="BF16",
                                                 shards=4, kv_heads=4, seed=7)),
    ("init-llama-rope-llama3", TOL, init_model("l3", "llama", ["--rope-scaling", "llama3"])),
    ("init-llama-rope-llama3(metadata)", TOL, llama3_metadata()),
    ("init-llama-hd20", TOL, init_model("lhd", "llama", ["--head-dim", "20", "--tied"])),
    ("init-qwen2-bf16", TOL, init_model("q2", "qwen2", wtype="bf16")),
    ("init-qwen2(convert)", TOL, reconverted("q2", "qwen2")),
    ("init-qwen3-hd20-llama3(convert)", TOL,
     reconverted("q3", "qwen3", ["--head-dim", "20", "--rope-scaling", "llama3"])),
    ("init-qwen3-hd16-f16", TOL, init_model("q3", "qwen3", ["--head-dim", "16"], wtype="f16")),
]


if __name__ == "__main__":
    sys.exit(lp.main(cases=CASES))
