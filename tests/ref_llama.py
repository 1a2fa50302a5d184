#!/usr/bin/python3
"""ref_llama.py - independent PyTorch (float64) reference for Llama-family models.

Used by the parity tests to check T2's logits. It shares no code with the C implementation:
it parses the model files itself (llama2.c v0 / v1 checkpoints, GGUF v2/v3 of architecture
llama, qwen2 or qwen3, and Hugging Face folders: config.json + *.safetensors) and runs a
plain, unoptimised forward pass in float64 over the whole token list.

Architectures: llama (Llama 2/3, Mistral), qwen2 (biases on Q, K, V), qwen3 (per-head RMSNorm
of Q and K, own head_dim). Rotary layouts: GGUF llama rotates adjacent pairs (x[2i], x[2i+1]);
GGUF qwen2/qwen3 and every Hugging Face model rotate halves (x[i], x[i + hd/2]) -- for HF
llama this is why a GGUF converter permutes the Q/K rows. Frequencies theta^(-2i/hd), divided
by per-frequency factors when the model has rope scaling (Llama 3: computed here from the
config in float64; GGUF: the rope_freqs tensor or llama.rope.scaling.* keys).

Library:
    model = load_model(path)            # -> Model (config + float64 tensors)
    logits = forward(model, [1, 5, 9])  # -> torch.float64 tensor (n_tokens, vocab)

CLI (always run with /usr/bin/python3):
    ref_llama.py info MODEL
    ref_llama.py logits MODEL --tokens 1,2,3 -o OUT.f32    # float32 LE, n_tokens x vocab
    ref_llama.py generate MODEL -n STEPS [-z TOKENIZER.bin]
    ref_llama.py golden [--assets DIR]    # stories260K greedy 200 steps == expected text

Model conventions (Meta / llama2.c): RMSNorm x * rsqrt(mean(x^2) + eps) * w; RoPE rotates
adjacent pairs (x[2i], x[2i+1]) of each head by pos * theta^(-2i/head_dim); grouped-query
attention (query head h reads kv head h // (n_heads / n_kv_heads)); SwiGLU MLP
w2(silu(w1 x) * w3 x); final RMSNorm; classifier (tied to the embedding if absent).
"""

import argparse
import math
import os
import re
import struct
import sys

import numpy as np
import torch

# --------------------------------------------------------------------------------------------
# model container


class ModelError(Exception):
    pass


class Config:
    def __init__(self, dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len,
                 norm_eps=1e-5, rope_theta=10000.0, head_dim=None, arch="llama",
                 rope_halves=False, rope_factors=None):
        self.dim = int(dim)
        self.hidden_dim = int(hidden_dim)
        self.n_layers = int(n_layers)
        self.n_heads = int(n_heads)
        self.n_kv_heads = int(n_kv_heads)
        self.vocab_size = int(vocab_size)
        self.seq_len = int(seq_len)
        self.norm_eps = float(norm_eps)
        self.rope_theta = float(rope_theta)
        self.arch = arch
        self.rope_halves = bool(rope_halves)   # rotate (x[i], x[i+hd/2]) instead of pairs
        self.rope_factors = rope_factors       # None or float64 array (hd/2): divisors
        self._head_dim = None if head_dim is None else int(head_dim)
        if self.n_heads <= 0:
            raise ModelError("config: n_heads must be > 0 (got %d)" % self.n_heads)
        if self._head_dim is None and self.dim % self.n_heads:
            raise ModelError("config: dim %d not divisible by n_heads %d"
                             % (self.dim, self.n_heads))
        self.validate()

    @property
    def head_dim(self):
        return self.dim // self.n_heads if self._head_dim is None else self._head_dim

    @property
    def q_dim(self):
        return self.n_heads * self.head_dim

    @property
    def kv_dim(self):
        return self.n_kv_heads * self.head_dim

    def validate(self):
        for name in ("dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size",
                     "seq_len"):
            if getattr(self, name) <= 0:
                raise ModelError("config: %s must be > 0 (got %d)" % (name, getattr(self, name)))
        if self.head_dim <= 0 or self.head_dim % 2:
            raise ModelError("config: head_dim %d is odd (RoPE needs pairs)" % self.head_dim)
        if self.n_heads % self.n_kv_heads:
            raise ModelError("config: n_heads %d not divisible by n_kv_heads %d"
                             % (self.n_heads, self.n_kv_heads))
        if not (self.norm_eps > 0 and math.isfinite(self.norm_eps)):
            raise ModelError("config: bad norm_eps %r" % self.norm_eps)
        if not (self.rope_theta > 0 and math.isfinite(self.rope_theta)):
            raise ModelError("config: bad rope_theta %r" % self.rope_theta)
        if self.rope_factors is not None:
            f = np.asarray(self.rope_factors, dtype=np.float64)
            if f.shape != (self.head_dim // 2,) or not (np.isfinite(f).all() and (f > 0).all()):
                raise ModelError("config: rope factors must be %d positive numbers"
                                 % (self.head_dim // 2))
            self.rope_factors = f

    def __repr__(self):
        return ("Config(arch=%s, dim=%d, hidden_dim=%d, n_layers=%d, n_heads=%d, n_kv_heads=%d, "
                "vocab_size=%d, seq_len=%d, head_dim=%d, norm_eps=%g, rope_theta=%g, rope=%s%s)"
                % (self.arch, self.dim, self.hidden_dim, self.n_layers, self.n_heads,
                   self.n_kv_heads, self.vocab_size, self.seq_len, self.head_dim, self.norm_eps,
                   self.rope_theta, "halves" if self.rope_halves else "pairs",
                   "" if self.rope_factors is None else ", scaled"))


class Model:
    """config + float64 tensors. layers[i] has attn_norm, wq, wk, wv, wo, ffn_norm, w1, w2, w3
    and optionally bq, bk, bv (biases) and q_norm, k_norm (per-head norms); matrices are
    (out, in)."""

    def __init__(self, config, tok_emb, layers, norm, wcls, fmt, tied):
        self.config = config
        self.tok_emb = tok_emb
        self.layers = layers
        self.norm = norm
        self.wcls = wcls
        self.format = fmt
        self.tied = tied
        self.check_shapes()

    def check_shapes(self):
        c = self.config
        exp = {
            "attn_norm": (c.dim,), "wq": (c.q_dim, c.dim), "wk": (c.kv_dim, c.dim),
            "wv": (c.kv_dim, c.dim), "wo": (c.dim, c.q_dim), "ffn_norm": (c.dim,),
            "w1": (c.hidden_dim, c.dim), "w2": (c.dim, c.hidden_dim), "w3": (c.hidden_dim, c.dim),
        }
        optional = {"bq": (c.q_dim,), "bk": (c.kv_dim,), "bv": (c.kv_dim,),
                    "q_norm": (c.head_dim,), "k_norm": (c.head_dim,)}
        def chk(name, t, shape):
            if tuple(t.shape) != tuple(shape):
                raise ModelError("tensor %s: shape %s, expected %s" % (name, tuple(t.shape), shape))
            if t.dtype != torch.float64:
                raise ModelError("tensor %s: dtype %s (internal error)" % (name, t.dtype))
            if not torch.isfinite(t).all():
                raise ModelError("tensor %s: contains non-finite values" % name)
        chk("tok_emb", self.tok_emb, (c.vocab_size, c.dim))
        if len(self.layers) != c.n_layers:
            raise ModelError("expected %d layers, got %d" % (c.n_layers, len(self.layers)))
        for i, L in enumerate(self.layers):
            if not set(exp) <= set(L) <= set(exp) | set(optional):
                raise ModelError("layer %d: tensors %s" % (i, sorted(L)))
            for k, shape in list(exp.items()) + list(optional.items()):
                if k in L:
                    chk("layer %d %s" % (i, k), L[k], shape)
        chk("norm", self.norm, (c.dim,))
        chk("wcls", self.wcls, (c.vocab_size, c.dim))


def _t(a):
    """numpy array (any float dtype) -> contiguous float64 torch tensor (own copy)."""
    return torch.from_numpy(np.array(a, dtype=np.float64, copy=True))


# --------------------------------------------------------------------------------------------
# llama2.c checkpoints

LLAMA2C_MAGIC = 0x616B3432  # "ak42"
GGUF_MAGIC = 0x46554747     # "GGUF"


def _rope_tables(seq_len, head_dim, theta, factors=None):
    """cos/sin (seq_len, head_dim/2) in float64: angle = pos * theta^(-2i/head_dim), divided by
    factors[i] when given (rope scaling)."""
    i = np.arange(0, head_dim, 2, dtype=np.float64)
    inv = theta ** (-(i / head_dim))
    if factors is not None:
        inv = inv / factors
    ang = np.arange(seq_len, dtype=np.float64)[:, None] * inv[None, :]
    return np.cos(ang), np.sin(ang)


class _Reader:
    """Sequential float32 tensor reader over a bytes buffer with exact-size accounting."""

    def __init__(self, buf, off, path):
        self.buf = buf
        self.off = off
        self.path = path

    def f32(self, name, *shape):
        n = int(np.prod(shape))
        end = self.off + 4 * n
        if end > len(self.buf):
            raise ModelError("%s: truncated reading %s (need %d bytes at offset %d, file has %d)"
                             % (self.path, name, 4 * n, self.off, len(self.buf)))
        a = np.frombuffer(self.buf, dtype="<f4", count=n, offset=self.off).reshape(shape)
        self.off = end
        return a

    def finish(self):
        if self.off != len(self.buf):
            raise ModelError("%s: %d trailing bytes after the last tensor (size %d, expected %d)"
                             % (self.path, len(self.buf) - self.off, len(self.buf), self.off))


def _llama2c_config(path, p):
    dim, hidden, nl, nh, nkv, vocab, seq = p
    try:
        return Config(dim, hidden, nl, nh, nkv, vocab, seq, norm_eps=1e-5, rope_theta=10000.0)
    except ModelError as e:
        raise ModelError("%s: %s" % (path, e))


def _expected_llama2c_floats(c, with_freqs, separate):
    L, d, h, kv = c.n_layers, c.dim, c.hidden_dim, c.kv_dim
    n = c.vocab_size * d + L * (2 * d + d * d * 2 + 2 * kv * d + 3 * h * d) + d
    if with_freqs:
        n += c.seq_len * c.head_dim
    if separate:
        n += c.vocab_size * d
    return n


def load_llama2c_v0(path, buf):
    if len(buf) < 28:
        raise ModelError("%s: too small for a llama2.c header (%d bytes)" % (path, len(buf)))
    p = list(struct.unpack_from("<7i", buf, 0))
    separate = p[5] < 0
    p[5] = abs(p[5])
    c = _llama2c_config(path, p)
    need = 28 + 4 * _expected_llama2c_floats(c, True, separate)
    if len(buf) != need:
        raise ModelError("%s: llama2.c v0 file size %d, expected %d for %r (%s classifier)"
                         % (path, len(buf), need, c, "separate" if separate else "shared"))
    L, d, h, kv, V = c.n_layers, c.dim, c.hidden_dim, c.kv_dim, c.vocab_size
    r = _Reader(buf, 28, path)
    emb = r.f32("token_embedding", V, d)
    rms_att = r.f32("rms_att", L, d)
    wq = r.f32("wq", L, d, d)
    wk = r.f32("wk", L, kv, d)
    wv = r.f32("wv", L, kv, d)
    wo = r.f32("wo", L, d, d)
    rms_ffn = r.f32("rms_ffn", L, d)
    w1 = r.f32("w1", L, h, d)
    w2 = r.f32("w2", L, d, h)
    w3 = r.f32("w3", L, h, d)
    rms_final = r.f32("rms_final", d)
    fr = r.f32("freq_cis_real", c.seq_len, c.head_dim // 2)
    fi = r.f32("freq_cis_imag", c.seq_len, c.head_dim // 2)
    wcls = r.f32("wcls", V, d) if separate else emb
    r.finish()
    # The stored RoPE tables must agree with theta=10000 adjacent-pair RoPE, which is what
    # the forward pass computes (it does not use the stored tables).
    cos, sin = _rope_tables(c.seq_len, c.head_dim, c.rope_theta)
    err = max(np.abs(fr - cos).max(), np.abs(fi - sin).max())
    if not err < 1e-3:
        raise ModelError("%s: stored freq_cis tables differ from theta=10000 RoPE (max err %g)"
                         % (path, err))
    layers = []
    for i in range(L):
        layers.append(dict(attn_norm=_t(rms_att[i]), wq=_t(wq[i]), wk=_t(wk[i]), wv=_t(wv[i]),
                           wo=_t(wo[i]), ffn_norm=_t(rms_ffn[i]), w1=_t(w1[i]), w2=_t(w2[i]),
                           w3=_t(w3[i])))
    emb_t = _t(emb)
    return Model(c, emb_t, layers, _t(rms_final), _t(wcls) if separate else emb_t,
                 "llama2c-v0", not separate)


def load_llama2c_v1(path, buf):
    if len(buf) < 256:
        raise ModelError("%s: too small for a llama2.c v1 header (%d bytes)" % (path, len(buf)))
    magic, version = struct.unpack_from("<Ii", buf, 0)
    assert magic == LLAMA2C_MAGIC
    if version != 1:
        raise ModelError("%s: llama2.c checkpoint version %d not supported (only 0 and 1)"
                         % (path, version))
    p = list(struct.unpack_from("<7i", buf, 8))
    shared = buf[36]
    if shared not in (0, 1):
        raise ModelError("%s: shared_classifier byte is %d (expected 0 or 1)" % (path, shared))
    if any(buf[37:256]):
        raise ModelError("%s: v1 header padding (bytes 37..255) is not zero" % path)
    c = _llama2c_config(path, p)
    separate = not shared
    need = 256 + 4 * _expected_llama2c_floats(c, False, separate)
    if len(buf) != need:
        raise ModelError("%s: llama2.c v1 file size %d, expected %d for %r (%s classifier)"
                         % (path, len(buf), need, c, "separate" if separate else "shared"))
    L, d, h, kv, V = c.n_layers, c.dim, c.hidden_dim, c.kv_dim, c.vocab_size
    r = _Reader(buf, 256, path)
    attn_norm = [r.f32("attention_norm[%d]" % i, d) for i in range(L)]
    ffn_norm = [r.f32("ffn_norm[%d]" % i, d) for i in range(L)]
    norm = r.f32("norm", d)
    emb = r.f32("tok_embeddings", V, d)
    wq = [r.f32("wq[%d]" % i, d, d) for i in range(L)]
    wk = [r.f32("wk[%d]" % i, kv, d) for i in range(L)]
    wv = [r.f32("wv[%d]" % i, kv, d) for i in range(L)]
    wo = [r.f32("wo[%d]" % i, d, d) for i in range(L)]
    w1 = [r.f32("w1[%d]" % i, h, d) for i in range(L)]
    w2 = [r.f32("w2[%d]" % i, d, h) for i in range(L)]
    w3 = [r.f32("w3[%d]" % i, h, d) for i in range(L)]
    wcls = r.f32("output", V, d) if separate else None
    r.finish()
    layers = []
    for i in range(L):
        layers.append(dict(attn_norm=_t(attn_norm[i]), wq=_t(wq[i]), wk=_t(wk[i]),
                           wv=_t(wv[i]), wo=_t(wo[i]), ffn_norm=_t(ffn_norm[i]), w1=_t(w1[i]),
                           w2=_t(w2[i]), w3=_t(w3[i])))
    emb_t = _t(emb)
    return Model(c, emb_t, layers, _t(norm), _t(wcls) if separate else emb_t,
                 "llama2c-v1", not separate)


# --------------------------------------------------------------------------------------------
# GGUF

# value types
GGUF_UINT8, GGUF_INT8, GGUF_UINT16, GGUF_INT16, GGUF_UINT32, GGUF_INT32, GGUF_FLOAT32, \
    GGUF_BOOL, GGUF_STRING, GGUF_ARRAY, GGUF_UINT64, GGUF_INT64, GGUF_FLOAT64 = range(13)
_GGUF_SCALAR = {
    GGUF_UINT8: "<B", GGUF_INT8: "<b", GGUF_UINT16: "<H", GGUF_INT16: "<h",
    GGUF_UINT32: "<I", GGUF_INT32: "<i", GGUF_FLOAT32: "<f", GGUF_BOOL: "<B",
    GGUF_UINT64: "<Q", GGUF_INT64: "<q", GGUF_FLOAT64: "<d",
}
_GGUF_INT_TYPES = (GGUF_UINT8, GGUF_INT8, GGUF_UINT16, GGUF_INT16, GGUF_UINT32, GGUF_INT32,
                   GGUF_UINT64, GGUF_INT64)

# ggml tensor types this reference can dequantize: type -> (name, block elems, block bytes)
GGML_F32, GGML_F16, GGML_Q8_0, GGML_F64, GGML_BF16 = 0, 1, 8, 28, 30
_GGML_TYPES = {
    GGML_F32: ("F32", 1, 4),
    GGML_F16: ("F16", 1, 2),
    GGML_Q8_0: ("Q8_0", 32, 34),
    GGML_F64: ("F64", 1, 8),
    GGML_BF16: ("BF16", 1, 2),
}


class GGUFTensor:
    def __init__(self, name, ne, gtype, offset):
        self.name = name
        self.ne = ne          # GGML order: ne[0] contiguous
        self.type = gtype
        self.offset = offset  # relative to the data section
        self.nbytes = None
        self.data_start = None

    @property
    def shape(self):
        """row-major numpy shape (reverse of ne)."""
        return tuple(reversed(self.ne))


class GGUFFile:
    """Strict GGUF v2/v3 parser (little-endian)."""

    def __init__(self, path, buf=None):
        self.path = path
        self.buf = open(path, "rb").read() if buf is None else buf
        self.off = 0
        self.kv = {}
        self.kv_types = {}
        self.tensors = {}
        self._parse()

    # -- primitive readers
    def _need(self, n, what):
        if n < 0 or self.off + n > len(self.buf):
            raise ModelError("%s: truncated reading %s at offset %d (need %d bytes, file has %d)"
                             % (self.path, what, self.off, n, len(self.buf)))

    def _scalar(self, fmt, what):
        n = struct.calcsize(fmt)
        self._need(n, what)
        v = struct.unpack_from(fmt, self.buf, self.off)[0]
        self.off += n
        return v

    def _string(self, what):
        n = self._scalar("<Q", what + " length")
        self._need(n, what)
        raw = self.buf[self.off:self.off + n]
        self.off += n
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ModelError("%s: %s is not valid UTF-8" % (self.path, what))

    def _value(self, vtype, what, depth=0):
        if vtype in _GGUF_SCALAR:
            v = self._scalar(_GGUF_SCALAR[vtype], what)
            if vtype == GGUF_BOOL:
                if v not in (0, 1):
                    raise ModelError("%s: %s: bool value %d" % (self.path, what, v))
                v = bool(v)
            return v
        if vtype == GGUF_STRING:
            return self._string(what)
        if vtype == GGUF_ARRAY:
            if depth > 0:
                # nested arrays are allowed by the spec; support them but keep it bounded
                if depth > 8:
                    raise ModelError("%s: %s: arrays nested too deeply" % (self.path, what))
            etype = self._scalar("<I", what + " element type")
            count = self._scalar("<Q", what + " element count")
            if etype in _GGUF_SCALAR and etype != GGUF_BOOL:
                fmt = _GGUF_SCALAR[etype]
                size = struct.calcsize(fmt)
                self._need(count * size, what + " elements")
                arr = np.frombuffer(self.buf, dtype=np.dtype(fmt), count=count, offset=self.off)
                self.off += count * size
                return ("array", etype, arr)
            if etype == GGUF_BOOL or etype == GGUF_STRING or etype == GGUF_ARRAY:
                # every element takes at least one byte: bound the count before looping
                self._need(count, what + " elements")
                vals = [self._value(etype, "%s[%d]" % (what, i), depth + 1) for i in range(count)]
                return ("array", etype, vals)
            raise ModelError("%s: %s: unknown array element type %d" % (self.path, what, etype))
        raise ModelError("%s: %s: unknown value type %d" % (self.path, what, vtype))

    # -- structure
    def _parse(self):
        magic = self._scalar("<I", "magic")
        if magic != GGUF_MAGIC:
            raise ModelError("%s: not a GGUF file (magic 0x%08x)" % (self.path, magic))
        self.version = self._scalar("<I", "version")
        if self.version not in (2, 3):
            raise ModelError("%s: GGUF version %d not supported (2 or 3)"
                             % (self.path, self.version))
        n_tensors = self._scalar("<Q", "tensor count")
        n_kv = self._scalar("<Q", "kv count")
        # each kv needs >= 12 bytes and each tensor info >= 24: bound counts by the file size
        if n_kv * 12 > len(self.buf) or n_tensors * 24 > len(self.buf):
            raise ModelError("%s: implausible counts (%d tensors, %d kvs) for a %d-byte file"
                             % (self.path, n_tensors, n_kv, len(self.buf)))
        for i in range(n_kv):
            key = self._string("kv[%d] key" % i)
            if key in self.kv:
                raise ModelError("%s: duplicate key %r" % (self.path, key))
            vtype = self._scalar("<I", "kv %r type" % key)
            self.kv[key] = self._value(vtype, "kv %r" % key)
            self.kv_types[key] = vtype
        infos = []
        for i in range(n_tensors):
            name = self._string("tensor[%d] name" % i)
            if name in self.tensors:
                raise ModelError("%s: duplicate tensor %r" % (self.path, name))
            n_dims = self._scalar("<I", "tensor %r n_dims" % name)
            if not 1 <= n_dims <= 4:
                raise ModelError("%s: tensor %r: n_dims %d" % (self.path, name, n_dims))
            ne = [self._scalar("<Q", "tensor %r dim" % name) for _ in range(n_dims)]
            if any(x == 0 for x in ne):
                raise ModelError("%s: tensor %r: zero dimension %s" % (self.path, name, ne))
            gtype = self._scalar("<I", "tensor %r type" % name)
            offset = self._scalar("<Q", "tensor %r offset" % name)
            t = GGUFTensor(name, ne, gtype, offset)
            self.tensors[name] = t
            infos.append(t)
        align = 32
        if "general.alignment" in self.kv:
            if self.kv_types["general.alignment"] != GGUF_UINT32:
                raise ModelError("%s: general.alignment must be uint32" % self.path)
            align = self.kv["general.alignment"]
            if align == 0 or (align & (align - 1)):
                raise ModelError("%s: general.alignment %d is not a power of two"
                                 % (self.path, align))
        self.alignment = align
        self.data_start = (self.off + align - 1) // align * align
        if self.data_start > len(self.buf):
            raise ModelError("%s: data section starts past end of file" % self.path)
        if any(self.buf[self.off:self.data_start]):
            raise ModelError("%s: non-zero padding before the data section" % self.path)
        for t in infos:
            if t.offset % align:
                raise ModelError("%s: tensor %r: offset %d not aligned to %d"
                                 % (self.path, t.name, t.offset, align))
            n = int(np.prod([int(x) for x in t.ne], dtype=object))
            if t.type in _GGML_TYPES:
                tname, blk, bsz = _GGML_TYPES[t.type]
                if t.ne[0] % blk:
                    raise ModelError("%s: tensor %r: ne[0]=%d not a multiple of %s block %d"
                                     % (self.path, t.name, t.ne[0], tname, blk))
                t.nbytes = n // blk * bsz
                start = self.data_start + t.offset
                if start + t.nbytes > len(self.buf):
                    raise ModelError("%s: tensor %r: data [offset %d, %d bytes] extends past end "
                                     "of file (%d bytes)" % (self.path, t.name, t.offset,
                                                             t.nbytes, len(self.buf)))
                t.data_start = start
        # tensors must not overlap
        spans = sorted((t.data_start, t.data_start + t.nbytes, t.name) for t in infos
                       if t.nbytes is not None)
        for a, b in zip(spans, spans[1:]):
            if b[0] < a[1]:
                raise ModelError("%s: tensors %r and %r overlap" % (self.path, a[2], b[2]))

    # -- accessors
    def get(self, key, default=None, kinds=None):
        if key not in self.kv:
            return default
        if kinds is not None and self.kv_types[key] not in kinds:
            raise ModelError("%s: key %r has type %d, expected one of %s"
                             % (self.path, key, self.kv_types[key], kinds))
        return self.kv[key]

    def get_int(self, key, default=None):
        v = self.get(key, None, _GGUF_INT_TYPES)
        if v is None:
            if default is None:
                raise ModelError("%s: missing key %r" % (self.path, key))
            return default
        return int(v)

    def get_float(self, key, default):
        v = self.get(key, None, (GGUF_FLOAT32, GGUF_FLOAT64))
        return default if v is None else float(v)

    def tensor(self, name):
        """Dequantized float64 numpy array with row-major shape reversed(ne)."""
        t = self.tensors.get(name)
        if t is None:
            raise ModelError("%s: missing tensor %r" % (self.path, name))
        if t.type not in _GGML_TYPES:
            raise ModelError("%s: tensor %r: ggml type %d not supported by the reference"
                             % (self.path, name, t.type))
        n = int(np.prod(t.ne))
        raw = self.buf[t.data_start:t.data_start + t.nbytes]
        if t.type == GGML_F32:
            a = np.frombuffer(raw, dtype="<f4").astype(np.float64)
        elif t.type == GGML_F64:
            a = np.frombuffer(raw, dtype="<f8").astype(np.float64)
        elif t.type == GGML_F16:
            a = np.frombuffer(raw, dtype="<f2").astype(np.float64)
        elif t.type == GGML_BF16:
            u = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << np.uint32(16)
            a = u.view(np.float32).astype(np.float64)
        elif t.type == GGML_Q8_0:
            blk = np.frombuffer(raw, dtype=np.dtype([("d", "<f2"), ("qs", "i1", (32,))]))
            a = (blk["d"].astype(np.float64)[:, None] * blk["qs"].astype(np.float64)).reshape(-1)
        else:  # pragma: no cover
            raise AssertionError
        assert a.size == n
        return a.reshape(t.shape)


GGUF_ARCHS = ("llama", "qwen2", "qwen3")


def llama3_rope_factors(head_dim, theta, factor, low, high, orig_ctx):
    """Llama 3.1 rope scaling as per-frequency divisors (float64): wavelengths longer than
    orig_ctx/low are divided by `factor`, shorter than orig_ctx/high kept, the band between
    blended linearly in orig_ctx/wavelength."""
    out = []
    for i in range(head_dim // 2):
        inv = theta ** (-2.0 * i / head_dim)
        wavelen = 2 * math.pi / inv
        if wavelen < orig_ctx / high:
            scaled = inv
        elif wavelen > orig_ctx / low:
            scaled = inv / factor
        else:
            smooth = (orig_ctx / wavelen - low) / (high - low)
            scaled = (1 - smooth) * inv / factor + smooth * inv
        out.append(inv / scaled)
    return np.array(out, dtype=np.float64)


def _gguf_rope_factors(g, arch, head_dim, theta):
    rs = g.get(arch + ".rope.scaling.type", None, (GGUF_STRING,))
    if "rope_freqs.weight" in g.tensors:
        f = g.tensor("rope_freqs.weight").reshape(-1)
        if rs == "linear":  # llama.cpp applies both
            f = f * g.get_float(arch + ".rope.scaling.factor", 1.0)
        return f
    if rs in (None, "none"):
        if g.get_float(arch + ".rope.scale_linear", 1.0) != 1.0:
            raise ModelError("%s: %s.rope.scale_linear not supported" % (g.path, arch))
        return None
    factor = g.get_float(arch + ".rope.scaling.factor", None)
    if factor is None:
        raise ModelError("%s: rope scaling %r without a factor" % (g.path, rs))
    if rs == "linear":
        return np.full(head_dim // 2, factor, dtype=np.float64)
    if rs == "llama3":
        return llama3_rope_factors(head_dim, theta, factor,
                                   g.get_float(arch + ".rope.scaling.low_freq_factor", 1.0),
                                   g.get_float(arch + ".rope.scaling.high_freq_factor", 4.0),
                                   g.get_int(arch + ".rope.scaling.original_context_length"))
    raise ModelError("%s: rope scaling %r not supported" % (g.path, rs))


def load_gguf(path, buf):
    g = GGUFFile(path, buf)
    arch = g.get("general.architecture", None, (GGUF_STRING,))
    if arch not in GGUF_ARCHS:
        raise ModelError("%s: general.architecture is %r, the reference supports %s"
                         % (path, arch, ", ".join(GGUF_ARCHS)))
    A = arch + "."
    emb_np = g.tensor("token_embd.weight")
    if emb_np.ndim != 2:
        raise ModelError("%s: token_embd.weight must be 2-D, has ne=%s"
                         % (path, g.tensors["token_embd.weight"].ne))
    vocab = emb_np.shape[0]
    if A + "vocab_size" in g.kv and g.get_int(A + "vocab_size") != vocab:
        raise ModelError("%s: %svocab_size %d != token_embd rows %d"
                         % (path, A, g.get_int(A + "vocab_size"), vocab))
    n_heads = g.get_int(A + "attention.head_count")
    dim = g.get_int(A + "embedding_length")
    head_dim = g.get_int(A + "attention.key_length", 0) or None
    theta = g.get_float(A + "rope.freq_base", 10000.0 if arch == "llama" else 1e6)
    hd = head_dim or dim // n_heads
    c = Config(dim=dim,
               hidden_dim=g.get_int(A + "feed_forward_length"),
               n_layers=g.get_int(A + "block_count"),
               n_heads=n_heads,
               n_kv_heads=g.get_int(A + "attention.head_count_kv", n_heads),
               vocab_size=vocab,
               seq_len=g.get_int(A + "context_length"),
               norm_eps=g.get_float(A + "attention.layer_norm_rms_epsilon", 1e-5),
               rope_theta=theta, head_dim=head_dim, arch=arch,
               rope_halves=arch != "llama",
               rope_factors=_gguf_rope_factors(g, arch, hd, theta))
    # features this reference does not implement must not be silently ignored
    for key, want in ((A + "rope.dimension_count", c.head_dim),
                      (A + "attention.value_length", c.head_dim)):
        if key in g.kv and g.get_int(key) != want:
            raise ModelError("%s: %s = %d, the reference only supports %d"
                             % (path, key, g.get_int(key), want))
    if A + "expert_count" in g.kv and g.get_int(A + "expert_count") not in (0, 1):
        raise ModelError("%s: mixture-of-experts models not supported" % path)

    used = set(["rope_freqs.weight"])

    def T(name):
        used.add(name)
        return g.tensor(name)

    emb = T("token_embd.weight")
    layers = []
    for i in range(c.n_layers):
        p = "blk.%d." % i
        L = dict(
            attn_norm=_t(T(p + "attn_norm.weight")), wq=_t(T(p + "attn_q.weight")),
            wk=_t(T(p + "attn_k.weight")), wv=_t(T(p + "attn_v.weight")),
            wo=_t(T(p + "attn_output.weight")), ffn_norm=_t(T(p + "ffn_norm.weight")),
            w1=_t(T(p + "ffn_gate.weight")), w2=_t(T(p + "ffn_down.weight")),
            w3=_t(T(p + "ffn_up.weight")))
        if arch == "qwen2" or (arch == "llama" and p + "attn_q.bias" in g.tensors):
            for k, n in (("bq", "attn_q.bias"), ("bk", "attn_k.bias"), ("bv", "attn_v.bias")):
                L[k] = _t(T(p + n))
        if arch == "qwen3":
            L["q_norm"] = _t(T(p + "attn_q_norm.weight"))
            L["k_norm"] = _t(T(p + "attn_k_norm.weight"))
        layers.append(L)
    norm = _t(T("output_norm.weight"))
    emb_t = _t(emb)
    tied = "output.weight" not in g.tensors
    wcls = emb_t if tied else _t(T("output.weight"))
    extra = sorted(set(g.tensors) - used)
    if extra:
        raise ModelError("%s: tensors the reference does not understand: %s" % (path, extra[:10]))
    m = Model(c, emb_t, layers, norm, wcls, "gguf-v%d" % g.version, tied)
    m.gguf = g
    return m


# --------------------------------------------------------------------------------------------
# Hugging Face folders: config.json + model.safetensors or shards listed in
# model.safetensors.index.json (this reader is independent of T2's C reader)

HF_ARCHS = {"LlamaForCausalLM": "llama", "MistralForCausalLM": "llama",
            "Qwen2ForCausalLM": "qwen2", "Qwen3ForCausalLM": "qwen3"}
_ST_DTYPES = {"F32": "<f4", "F16": "<f2", "BF16": "bf16", "F64": "<f8"}


def read_safetensors(path):
    """{name: float64 numpy array} of one .safetensors file (strictly checked)."""
    import json
    with open(path, "rb") as f:
        buf = f.read()
    if len(buf) < 8:
        raise ModelError("%s: too small for a safetensors header" % path)
    n = struct.unpack_from("<Q", buf, 0)[0]
    if 8 + n > len(buf):
        raise ModelError("%s: header length %d past end of file" % (path, n))
    hdr = json.loads(buf[8:8 + n].decode("utf-8"))
    base = 8 + n
    out = {}
    for name, info in hdr.items():
        if name == "__metadata__":
            continue
        dt = _ST_DTYPES.get(info["dtype"])
        if dt is None:
            raise ModelError("%s: tensor %r: dtype %s not supported" % (path, name, info["dtype"]))
        shape = tuple(int(x) for x in info["shape"])
        b, e = (int(x) for x in info["data_offsets"])
        count = int(np.prod(shape, dtype=np.int64))
        size = 2 if dt == "bf16" else int(dt[2])
        if not 0 <= b <= e <= len(buf) - base or e - b != count * size:
            raise ModelError("%s: tensor %r: bad data_offsets %s" % (path, name, (b, e)))
        raw = buf[base + b:base + e]
        if dt == "bf16":
            u = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << np.uint32(16)
            a = u.view(np.float32).astype(np.float64)
        else:
            a = np.frombuffer(raw, dtype=dt).astype(np.float64)
        out[name] = a.reshape(shape)
    return out


def load_hf(folder):
    import json
    with open(os.path.join(folder, "config.json")) as f:
        cfg = json.load(f)
    archs = cfg.get("architectures") or []
    if len(archs) != 1 or archs[0] not in HF_ARCHS:
        raise ModelError("%s: architectures %r not supported" % (folder, archs))
    arch = HF_ARCHS[archs[0]]
    index = os.path.join(folder, "model.safetensors.index.json")
    tensors = {}
    if os.path.exists(index):
        with open(index) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    for fn in files:
        tensors.update(read_safetensors(os.path.join(folder, fn)))
    dim, n_heads = cfg["hidden_size"], cfg["num_attention_heads"]
    head_dim = cfg.get("head_dim") or None
    hd = head_dim or dim // n_heads
    theta = float(cfg.get("rope_theta", 10000.0))
    factors = None
    rs = cfg.get("rope_scaling")
    if rs:
        kind = rs.get("rope_type", rs.get("type"))
        if kind != "llama3":
            raise ModelError("%s: rope scaling %r not supported" % (folder, kind))
        factors = llama3_rope_factors(hd, theta, rs["factor"], rs["low_freq_factor"],
                                      rs["high_freq_factor"],
                                      rs["original_max_position_embeddings"])
    c = Config(dim=dim, hidden_dim=cfg["intermediate_size"], n_layers=cfg["num_hidden_layers"],
               n_heads=n_heads, n_kv_heads=cfg.get("num_key_value_heads", n_heads),
               vocab_size=cfg["vocab_size"], seq_len=cfg["max_position_embeddings"],
               norm_eps=cfg.get("rms_norm_eps", 1e-6), rope_theta=theta, head_dim=head_dim,
               arch=arch, rope_halves=True, rope_factors=factors)
    used = set()

    def T(name):
        if name not in tensors:
            raise ModelError("%s: missing tensor %r" % (folder, name))
        used.add(name)
        return _t(tensors[name])

    layers = []
    for i in range(c.n_layers):
        p = "model.layers.%d." % i
        L = dict(attn_norm=T(p + "input_layernorm.weight"),
                 wq=T(p + "self_attn.q_proj.weight"), wk=T(p + "self_attn.k_proj.weight"),
                 wv=T(p + "self_attn.v_proj.weight"), wo=T(p + "self_attn.o_proj.weight"),
                 ffn_norm=T(p + "post_attention_layernorm.weight"),
                 w1=T(p + "mlp.gate_proj.weight"), w2=T(p + "mlp.down_proj.weight"),
                 w3=T(p + "mlp.up_proj.weight"))
        if p + "self_attn.q_proj.bias" in tensors:
            for k, n in (("bq", "q_proj"), ("bk", "k_proj"), ("bv", "v_proj")):
                L[k] = T(p + "self_attn.%s.bias" % n)
        if arch == "qwen3":
            L["q_norm"] = T(p + "self_attn.q_norm.weight")
            L["k_norm"] = T(p + "self_attn.k_norm.weight")
        layers.append(L)
    emb = T("model.embed_tokens.weight")
    tied = bool(cfg.get("tie_word_embeddings", False))
    wcls = emb if tied else T("lm_head.weight")
    norm = T("model.norm.weight")
    extra = sorted(set(tensors) - used - {"lm_head.weight"})
    if extra:
        raise ModelError("%s: tensors the reference does not understand: %s" % (folder, extra[:10]))
    return Model(c, emb, layers, norm, wcls, "hf-" + arch, tied)


def load_model(path):
    if os.path.isdir(path):
        return load_hf(path)
    with open(path, "rb") as f:
        buf = f.read()
    if len(buf) < 4:
        raise ModelError("%s: file too small (%d bytes)" % (path, len(buf)))
    magic = struct.unpack_from("<I", buf, 0)[0]
    if magic == GGUF_MAGIC:
        return load_gguf(path, buf)
    if magic == LLAMA2C_MAGIC:
        return load_llama2c_v1(path, buf)
    return load_llama2c_v0(path, buf)


# --------------------------------------------------------------------------------------------
# forward pass (float64, whole sequence at once)


def rmsnorm(x, w, eps):
    return x * torch.rsqrt((x * x).mean(dim=-1, keepdim=True) + eps) * w


def apply_rope(x, cos, sin, halves=False):
    """x: (T, H, hd); rotate adjacent pairs (x[2i], x[2i+1]) -- or, with halves, the pairs
    (x[i], x[i + hd/2]) -- by angle[pos, i]."""
    T, H, hd = x.shape
    c = cos[:, None, :]
    s = sin[:, None, :]
    if halves:
        a, b = x[..., :hd // 2], x[..., hd // 2:]
        return torch.cat((a * c - b * s, a * s + b * c), dim=-1)
    xr = x.reshape(T, H, hd // 2, 2)
    a, b = xr[..., 0], xr[..., 1]
    out = torch.stack((a * c - b * s, a * s + b * c), dim=-1)
    return out.reshape(T, H, hd)


def forward(model, tokens):
    """Logits (n_tokens, vocab) in float64; row i = logits after tokens[0..i]."""
    c = model.config
    tokens = [int(t) for t in tokens]
    T = len(tokens)
    if T == 0:
        raise ModelError("empty token list")
    if T > c.seq_len:
        raise ModelError("%d tokens exceed the context length %d" % (T, c.seq_len))
    for t in tokens:
        if not 0 <= t < c.vocab_size:
            raise ModelError("token %d out of range [0, %d)" % (t, c.vocab_size))
    hd, nh, nkv = c.head_dim, c.n_heads, c.n_kv_heads
    group = nh // nkv
    cos_np, sin_np = _rope_tables(T, hd, c.rope_theta, c.rope_factors)
    cos, sin = torch.from_numpy(cos_np), torch.from_numpy(sin_np)
    kv_of_head = torch.arange(nh) // group
    mask = torch.ones(T, T, dtype=torch.bool).tril()  # [query, key]: key <= query

    x = model.tok_emb[torch.tensor(tokens)].clone()
    for L in model.layers:
        h = rmsnorm(x, L["attn_norm"], c.norm_eps)
        q, k, v = h @ L["wq"].T, h @ L["wk"].T, h @ L["wv"].T
        if "bq" in L:
            q, k, v = q + L["bq"], k + L["bk"], v + L["bv"]
        q = q.reshape(T, nh, hd)
        k = k.reshape(T, nkv, hd)
        v = v.reshape(T, nkv, hd)
        if "q_norm" in L:
            q = rmsnorm(q, L["q_norm"], c.norm_eps)
            k = rmsnorm(k, L["k_norm"], c.norm_eps)
        q = apply_rope(q, cos, sin, c.rope_halves)
        k = apply_rope(k, cos, sin, c.rope_halves)
        k = k[:, kv_of_head, :]  # (T, nh, hd)
        v = v[:, kv_of_head, :]
        scores = torch.einsum("qhd,khd->hqk", q, k) / math.sqrt(hd)
        scores = scores.masked_fill(~mask, float("-inf"))
        att = torch.softmax(scores, dim=-1)
        o = torch.einsum("hqk,khd->qhd", att, v).reshape(T, c.q_dim)
        x = x + o @ L["wo"].T
        h = rmsnorm(x, L["ffn_norm"], c.norm_eps)
        g = h @ L["w1"].T
        u = h @ L["w3"].T
        x = x + (g * torch.sigmoid(g) * u) @ L["w2"].T
    x = rmsnorm(x, model.norm, c.norm_eps)
    return x @ model.wcls.T


def greedy(model, steps, bos=1):
    """llama2.c-style greedy generation from BOS: forward positions 0..steps-1, stop when
    BOS is produced. Returns [bos, generated...]."""
    seq = [bos]
    steps = min(steps, model.config.seq_len)
    for pos in range(steps):
        logits = forward(model, seq)[-1]
        nxt = int(torch.argmax(logits))
        if nxt == bos:
            break
        seq.append(nxt)
    return seq


# --------------------------------------------------------------------------------------------
# llama2.c tokenizer (decode only)


def load_llama2c_tokenizer(path, vocab_size):
    with open(path, "rb") as f:
        buf = f.read()
    off = 4
    pieces = []
    for i in range(vocab_size):
        if off + 8 > len(buf):
            raise ModelError("%s: truncated at token %d" % (path, i))
        _score, n = struct.unpack_from("<fi", buf, off)
        off += 8
        if n < 0 or off + n > len(buf):
            raise ModelError("%s: bad length %d at token %d" % (path, n, i))
        pieces.append(buf[off:off + n])
        off += n
    return pieces


_BYTE_PIECE = re.compile(rb"^<0x([0-9A-Fa-f]{2})>$")


def decode(pieces, seq):
    """bytes as llama2.c run.c prints them (decode + safe_printf), for seq = [bos, ...]."""
    out = bytearray()
    for prev, tok in zip(seq, seq[1:]):
        piece = pieces[tok]
        if prev == 1 and piece.startswith(b" "):
            piece = piece[1:]
        m = _BYTE_PIECE.match(piece)
        if m:
            piece = bytes([int(m.group(1), 16)])
        if len(piece) == 1 and not (32 <= piece[0] < 127 or piece[0] in b" \t\n\v\f\r"):
            continue  # safe_printf skips unprintable single bytes
        out += piece
    return bytes(out)


# --------------------------------------------------------------------------------------------
# CLI


def parse_tokens(s):
    try:
        toks = [int(x) for x in s.replace(" ", "").split(",") if x != ""]
    except ValueError:
        raise SystemExit("ref_llama: bad --tokens %r" % s)
    if not toks:
        raise SystemExit("ref_llama: --tokens is empty")
    return toks


def cmd_info(a):
    m = load_model(a.model)
    print("format: %s" % m.format)
    print(m.config)
    print("classifier: %s" % ("tied to embedding" if m.tied else "separate"))
    if hasattr(m, "gguf"):
        g = m.gguf
        for k in sorted(g.kv):
            v = g.kv[k]
            if isinstance(v, tuple):
                v = "array[%d] of type %d" % (len(v[2]), v[1])
            print("  kv %s = %r" % (k, v))
        for t in g.tensors.values():
            print("  tensor %s ne=%s type=%s" % (t.name, t.ne,
                                                 _GGML_TYPES.get(t.type, (t.type,))[0]))
    return 0


def cmd_logits(a):
    m = load_model(a.model)
    toks = parse_tokens(a.tokens)
    logits = forward(m, toks)
    arr = logits.numpy().astype("<f4")
    with open(a.output, "wb") as f:
        f.write(arr.tobytes())
    print("wrote %s: %d x %d float32 (max |logit| %.4g)"
          % (a.output, arr.shape[0], arr.shape[1], float(np.abs(arr).max())), file=sys.stderr)
    return 0


def cmd_generate(a):
    m = load_model(a.model)
    seq = greedy(m, a.steps)
    print(" ".join(str(t) for t in seq))
    if a.tokenizer:
        pieces = load_llama2c_tokenizer(a.tokenizer, m.config.vocab_size)
        sys.stdout.flush()
        sys.stdout.buffer.write(decode(pieces, seq) + b"\n")
    return 0


def cmd_golden(a):
    d = a.assets or os.path.join(os.environ.get("T2_ASSETS", "/work/shared/assets"), "models")
    if not os.path.isdir(d):
        d = "/work/shared/assets/models"
    model_path = os.path.join(d, "stories260K.bin")
    tok_path = os.path.join(d, "tok512.bin")
    exp_path = os.path.join(d, "stories260K_greedy200_expected.txt")
    for p in (model_path, tok_path, exp_path):
        if not os.path.exists(p):
            print("golden: SKIP, missing %s" % p)
            return 77
    m = load_model(model_path)
    seq = greedy(m, 200)
    got = decode(load_llama2c_tokenizer(tok_path, m.config.vocab_size), seq)
    with open(exp_path, "rb") as f:
        exp = f.read()
    # run.c ends its output with "\n"; the expected file may or may not keep it
    if got == exp or got + b"\n" == exp:
        print("golden: PASS (%d tokens, %d bytes match %s)" % (len(seq), len(got), exp_path))
        return 0
    n = next((i for i, (x, y) in enumerate(zip(got, exp)) if x != y), min(len(got), len(exp)))
    print("golden: FAIL, first difference at byte %d" % n)
    print("  got:      %r" % got[max(0, n - 40):n + 40])
    print("  expected: %r" % exp[max(0, n - 40):n + 40])
    return 1


def main(argv=None):
    ap = argparse.ArgumentParser(description="independent float64 PyTorch Llama reference")
    sub = ap.add_subparsers(dest="cmd")
    p = sub.add_parser("info", help="print the model's config and tensors")
    p.add_argument("model")
    p = sub.add_parser("logits", help="write float32 logits (n_tokens x vocab)")
    p.add_argument("model")
    p.add_argument("--tokens", required=True, help="comma-separated token ids")
    p.add_argument("-o", "--output", required=True)
    p = sub.add_parser("generate", help="greedy generation from BOS=1")
    p.add_argument("model")
    p.add_argument("-n", "--steps", type=int, default=256)
    p.add_argument("-z", "--tokenizer", help="llama2.c tokenizer.bin to also print the text")
    p = sub.add_parser("golden", help="stories260K greedy-200 must match the expected text")
    p.add_argument("--assets", help="directory with stories260K.bin, tok512.bin, expected txt")
    a = ap.parse_args(argv)
    if a.cmd is None:
        ap.print_help()
        return 2
    torch.set_num_threads(1)  # the test models are tiny: threads only add overhead
    try:
        return {"info": cmd_info, "logits": cmd_logits, "generate": cmd_generate,
                "golden": cmd_golden}[a.cmd](a)
    except ModelError as e:
        print("ref_llama: error: %s" % e, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
