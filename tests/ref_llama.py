#!/usr/bin/python3
"""ref_llama.py - independent PyTorch (float64) reference for Llama-family models.

Used by the parity tests to check T2's logits. It shares no code with the C implementation:
it parses the model files itself (llama2.c v0 / v1 checkpoints and GGUF v2/v3) and runs a
plain, unoptimised forward pass in float64 over the whole token list.

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
                 norm_eps=1e-5, rope_theta=10000.0):
        self.dim = int(dim)
        self.hidden_dim = int(hidden_dim)
        self.n_layers = int(n_layers)
        self.n_heads = int(n_heads)
        self.n_kv_heads = int(n_kv_heads)
        self.vocab_size = int(vocab_size)
        self.seq_len = int(seq_len)
        self.norm_eps = float(norm_eps)
        self.rope_theta = float(rope_theta)
        self.validate()

    @property
    def head_dim(self):
        return self.dim // self.n_heads

    @property
    def kv_dim(self):
        return self.n_kv_heads * self.head_dim

    def validate(self):
        for name in ("dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size",
                     "seq_len"):
            if getattr(self, name) <= 0:
                raise ModelError("config: %s must be > 0 (got %d)" % (name, getattr(self, name)))
        if self.dim % self.n_heads:
            raise ModelError("config: dim %d not divisible by n_heads %d" % (self.dim, self.n_heads))
        if self.head_dim % 2:
            raise ModelError("config: head_dim %d is odd (RoPE needs pairs)" % self.head_dim)
        if self.n_heads % self.n_kv_heads:
            raise ModelError("config: n_heads %d not divisible by n_kv_heads %d"
                             % (self.n_heads, self.n_kv_heads))
        if not (self.norm_eps > 0 and math.isfinite(self.norm_eps)):
            raise ModelError("config: bad norm_eps %r" % self.norm_eps)
        if not (self.rope_theta > 0 and math.isfinite(self.rope_theta)):
            raise ModelError("config: bad rope_theta %r" % self.rope_theta)

    def __repr__(self):
        return ("Config(dim=%d, hidden_dim=%d, n_layers=%d, n_heads=%d, n_kv_heads=%d, "
                "vocab_size=%d, seq_len=%d, head_dim=%d, norm_eps=%g, rope_theta=%g)"
                % (self.dim, self.hidden_dim, self.n_layers, self.n_heads, self.n_kv_heads,
                   self.vocab_size, self.seq_len, self.head_dim, self.norm_eps, self.rope_theta))


class Model:
    """config + float64 tensors. layers[i] has attn_norm, wq, wk, wv, wo, ffn_norm, w1, w2, w3;
    matrices are (out, in)."""

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
            "attn_norm": (c.dim,), "wq": (c.dim, c.dim), "wk": (c.kv_dim, c.dim),
            "wv": (c.kv_dim, c.dim), "wo": (c.dim, c.dim), "ffn_norm": (c.dim,),
            "w1": (c.hidden_dim, c.dim), "w2": (c.dim, c.hidden_dim), "w3": (c.hidden_dim, c.dim),
        }
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
            if set(L) != set(exp):
                raise ModelError("layer %d: tensors %s" % (i, sorted(L)))
            for k, shape in exp.items():
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


def _rope_tables(seq_len, head_dim, theta):
    """cos/sin (seq_len, head_dim/2) in float64: angle = pos * theta^(-2i/head_dim)."""
    i = np.arange(0, head_dim, 2, dtype=np.float64)
    inv = theta ** (-(i / head_dim))
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


def load_gguf(path, buf):
    g = GGUFFile(path, buf)
    arch = g.get("general.architecture", None, (GGUF_STRING,))
    if arch != "llama":
        raise ModelError("%s: general.architecture is %r, only 'llama' is supported" % (path, arch))
    emb_np = g.tensor("token_embd.weight")
    if emb_np.ndim != 2:
        raise ModelError("%s: token_embd.weight must be 2-D, has ne=%s"
                         % (path, g.tensors["token_embd.weight"].ne))
    vocab = emb_np.shape[0]
    if "llama.vocab_size" in g.kv and g.get_int("llama.vocab_size") != vocab:
        raise ModelError("%s: llama.vocab_size %d != token_embd rows %d"
                         % (path, g.get_int("llama.vocab_size"), vocab))
    n_heads = g.get_int("llama.attention.head_count")
    c = Config(dim=g.get_int("llama.embedding_length"),
               hidden_dim=g.get_int("llama.feed_forward_length"),
               n_layers=g.get_int("llama.block_count"),
               n_heads=n_heads,
               n_kv_heads=g.get_int("llama.attention.head_count_kv", n_heads),
               vocab_size=vocab,
               seq_len=g.get_int("llama.context_length"),
               norm_eps=g.get_float("llama.attention.layer_norm_rms_epsilon", 1e-5),
               rope_theta=g.get_float("llama.rope.freq_base", 10000.0))
    # features this reference does not implement must not be silently ignored
    for key, want in (("llama.rope.dimension_count", c.head_dim),
                      ("llama.attention.key_length", c.head_dim),
                      ("llama.attention.value_length", c.head_dim)):
        if key in g.kv and g.get_int(key) != want:
            raise ModelError("%s: %s = %d, the reference only supports %d"
                             % (path, key, g.get_int(key), want))
    rs = g.get("llama.rope.scaling.type", None, (GGUF_STRING,))
    if rs not in (None, "none"):
        raise ModelError("%s: rope scaling %r not supported" % (path, rs))
    if g.get_float("llama.rope.scale_linear", 1.0) != 1.0:
        raise ModelError("%s: llama.rope.scale_linear not supported" % path)
    if "llama.expert_count" in g.kv and g.get_int("llama.expert_count") not in (0, 1):
        raise ModelError("%s: mixture-of-experts models not supported" % path)

    used = set()

    def T(name):
        used.add(name)
        return g.tensor(name)

    emb = T("token_embd.weight")
    layers = []
    for i in range(c.n_layers):
        p = "blk.%d." % i
        layers.append(dict(
            attn_norm=_t(T(p + "attn_norm.weight")), wq=_t(T(p + "attn_q.weight")),
            wk=_t(T(p + "attn_k.weight")), wv=_t(T(p + "attn_v.weight")),
            wo=_t(T(p + "attn_output.weight")), ffn_norm=_t(T(p + "ffn_norm.weight")),
            w1=_t(T(p + "ffn_gate.weight")), w2=_t(T(p + "ffn_down.weight")),
            w3=_t(T(p + "ffn_up.weight"))))
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


def load_model(path):
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


def apply_rope(x, cos, sin):
    """x: (T, H, hd); rotate adjacent pairs (x[2i], x[2i+1]) by angle[pos, i]."""
    T, H, hd = x.shape
    xr = x.reshape(T, H, hd // 2, 2)
    a, b = xr[..., 0], xr[..., 1]
    c = cos[:, None, :]
    s = sin[:, None, :]
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
    cos_np, sin_np = _rope_tables(T, hd, c.rope_theta)
    cos, sin = torch.from_numpy(cos_np), torch.from_numpy(sin_np)
    kv_of_head = torch.arange(nh) // group
    mask = torch.ones(T, T, dtype=torch.bool).tril()  # [query, key]: key <= query

    x = model.tok_emb[torch.tensor(tokens)].clone()
    for L in model.layers:
        h = rmsnorm(x, L["attn_norm"], c.norm_eps)
        q = (h @ L["wq"].T).reshape(T, nh, hd)
        k = (h @ L["wk"].T).reshape(T, nkv, hd)
        v = (h @ L["wv"].T).reshape(T, nkv, hd)
        q = apply_rope(q, cos, sin)
        k = apply_rope(k, cos, sin)
        k = k[:, kv_of_head, :]  # (T, nh, hd)
        v = v[:, kv_of_head, :]
        scores = torch.einsum("qhd,khd->hqk", q, k) / math.sqrt(hd)
        scores = scores.masked_fill(~mask, float("-inf"))
        att = torch.softmax(scores, dim=-1)
        o = torch.einsum("hqk,khd->qhd", att, v).reshape(T, c.dim)
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
