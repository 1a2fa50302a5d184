#!/usr/bin/python3
"""make_hf.py - random Hugging Face model folders (config.json, safetensors, generation config)
for the architecture parity tests, with a safetensors writer of our own.

    make_hf.py OUT_DIR --arch llama|mistral|qwen2|qwen3 [--dtype F32|F16|BF16] [--shards N]
               [--tied] [--head-dim N] [--rope-scaling] [--seed S] [shape options]

Library: write_model(out_dir, **options) -> out_dir; write_safetensors(path, {name: array},
dtype). Weights are normal with std 1/sqrt(fan-in), norms 1 + 0.1 N(0,1), biases 0.5 N(0,1),
so that activations stay O(1) and differences between layouts show in the logits.
"""

import argparse
import json
import os
import struct
import sys

import numpy as np

ARCH_CLASS = {"llama": "LlamaForCausalLM", "mistral": "MistralForCausalLM",
              "qwen2": "Qwen2ForCausalLM", "qwen3": "Qwen3ForCausalLM"}
ST_DTYPES = ("F32", "F16", "BF16")


def to_bytes(a, dtype):
    """Little-endian bytes of float array a as F32, F16 or BF16 (round to nearest even)."""
    a = np.ascontiguousarray(a, dtype=np.float32)
    if dtype == "F32":
        return a.astype("<f4").tobytes()
    if dtype == "F16":
        return a.astype("<f2").tobytes()
    if dtype == "BF16":
        u = a.view(np.uint32).astype(np.uint64)
        u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
        return u.astype("<u2").tobytes()
    raise ValueError("dtype %r" % dtype)


def write_safetensors(path, tensors, dtype, header_pad=0):
    """Write {name: array} in the safetensors layout: u64 header length, JSON header (names ->
    dtype, shape, data_offsets relative to the data section), then the data. `header_pad`
    appends spaces to the header (allowed by the format)."""
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for name in sorted(tensors):
        b = to_bytes(tensors[name], dtype)
        header[name] = {"dtype": dtype, "shape": list(tensors[name].shape),
                        "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode() + b" " * header_pad
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def make_tensors(rng, arch, dim, hidden, layers, heads, kv_heads, head_dim, vocab, tied,
                 bias=False):
    def W(rows, cols):
        return rng.standard_normal((rows, cols)) / np.sqrt(cols)

    def N(n):
        return 1.0 + 0.1 * rng.standard_normal(n)
    qd, kvd = heads * head_dim, kv_heads * head_dim
    t = {"model.embed_tokens.weight": W(vocab, dim), "model.norm.weight": N(dim)}
    if not tied:
        t["lm_head.weight"] = W(vocab, dim)
    for i in range(layers):
        p = "model.layers.%d." % i
        t[p + "input_layernorm.weight"] = N(dim)
        t[p + "post_attention_layernorm.weight"] = N(dim)
        t[p + "self_attn.q_proj.weight"] = W(qd, dim)
        t[p + "self_attn.k_proj.weight"] = W(kvd, dim)
        t[p + "self_attn.v_proj.weight"] = W(kvd, dim)
        t[p + "self_attn.o_proj.weight"] = W(dim, qd)
        t[p + "mlp.gate_proj.weight"] = W(hidden, dim)
        t[p + "mlp.up_proj.weight"] = W(hidden, dim)
        t[p + "mlp.down_proj.weight"] = W(dim, hidden)
        if arch == "qwen2" or bias:
            for n, d in (("q_proj", qd), ("k_proj", kvd), ("v_proj", kvd)):
                t[p + "self_attn.%s.bias" % n] = 0.5 * rng.standard_normal(d)
        if arch == "qwen3":
            t[p + "self_attn.q_norm.weight"] = N(head_dim)
            t[p + "self_attn.k_norm.weight"] = N(head_dim)
    return t


def write_model(out, arch="llama", dtype="F32", shards=1, tied=False, head_dim=None,
                rope_scaling=False, seed=1, dim=64, hidden=112, layers=2, heads=4, kv_heads=2,
                vocab=211, seq_len=128, rope_theta=10000.0, eps=1e-5, attention_bias=False):
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(seed)
    hd = head_dim or dim // heads
    t = make_tensors(rng, arch, dim, hidden, layers, heads, kv_heads, hd, vocab, tied,
                     attention_bias)
    cfg = {"architectures": [ARCH_CLASS[arch]], "model_type": arch, "hidden_size": dim,
           "intermediate_size": hidden, "num_hidden_layers": layers,
           "num_attention_heads": heads, "num_key_value_heads": kv_heads, "vocab_size": vocab,
           "max_position_embeddings": seq_len, "rms_norm_eps": eps, "rope_theta": rope_theta,
           "tie_word_embeddings": tied, "torch_dtype": {"F32": "float32", "F16": "float16",
                                                        "BF16": "bfloat16"}[dtype],
           "bos_token_id": 1, "eos_token_id": 2}
    if head_dim:
        cfg["head_dim"] = head_dim
    if attention_bias:
        cfg["attention_bias"] = True
    if rope_scaling:
        cfg["rope_scaling"] = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                               "high_freq_factor": 4.0,
                               "original_max_position_embeddings": max(1, seq_len // 4)}
    if arch == "qwen2":
        cfg["use_sliding_window"] = False
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1)
    with open(os.path.join(out, "generation_config.json"), "w") as f:
        json.dump({"bos_token_id": 1, "eos_token_id": [2, 3]}, f)
    if shards <= 1:
        write_safetensors(os.path.join(out, "model.safetensors"), t, dtype)
        return out
    names = sorted(t)
    weight_map = {}
    for s in range(shards):
        fn = "model-%05d-of-%05d.safetensors" % (s + 1, shards)
        part = {n: t[n] for n in names[s::shards]}
        write_safetensors(os.path.join(out, fn), part, dtype, header_pad=7 * s)
        weight_map.update({n: fn for n in part})
    with open(os.path.join(out, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": 0}, "weight_map": weight_map}, f, indent=1)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--arch", choices=sorted(ARCH_CLASS), default="llama")
    ap.add_argument("--dtype", choices=ST_DTYPES, default="F32")
    ap.add_argument("--shards", type=int, default=1)
    ap.add_argument("--tied", action="store_true")
    ap.add_argument("--head-dim", type=int)
    ap.add_argument("--rope-scaling", action="store_true")
    ap.add_argument("--seed", type=int, default=1)
    for k, v in (("dim", 64), ("hidden", 112), ("layers", 2), ("heads", 4), ("kv-heads", 2),
                 ("vocab", 211), ("seq-len", 128)):
        ap.add_argument("--" + k, type=int, default=v)
    a = ap.parse_args(argv)
    write_model(a.out, a.arch, a.dtype, a.shards, a.tied, a.head_dim, a.rope_scaling, a.seed,
                a.dim, a.hidden, a.layers, a.heads, a.kv_heads, a.vocab, a.seq_len)
    return 0


if __name__ == "__main__":
    sys.exit(main())
