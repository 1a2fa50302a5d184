#!/usr/bin/python3
"""gguf_set_str.py IN.gguf OUT.gguf KEY VALUE: copy a GGUF (v2/v3) with one more string
metadata key (e.g. tokenizer.chat_template), for tests that need a key a model lacks. The new
key goes first; tensor data keeps its offsets (the data section is re-aligned)."""
import struct
import sys

SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}


def skip_value(b, p, t):
    if t in SIZES:
        return p + SIZES[t]
    if t == 8:
        (n,) = struct.unpack_from("<Q", b, p)
        return p + 8 + n
    if t == 9:
        et, n = struct.unpack_from("<IQ", b, p)
        p += 12
        for _ in range(n):
            p = skip_value(b, p, et)
        return p
    raise ValueError(f"unknown GGUF value type {t}")


def gguf_str(s):
    return struct.pack("<Q", len(s)) + s


def main(src, dst, key, value):
    b = open(src, "rb").read()
    magic, version, n_tensors, n_kv = struct.unpack_from("<4sIQQ", b, 0)
    if magic != b"GGUF" or version < 2:
        sys.exit(f"{src}: not a GGUF v2/v3 file")
    p, align = 24, 32
    for _ in range(n_kv):
        (kl,) = struct.unpack_from("<Q", b, p)
        k = b[p + 8:p + 8 + kl]
        (t,) = struct.unpack_from("<I", b, p + 8 + kl)
        if k == b"general.alignment":
            (align,) = struct.unpack_from("<I", b, p + 12 + kl)
        p = skip_value(b, p + 12 + kl, t)
    for _ in range(n_tensors):
        (nl,) = struct.unpack_from("<Q", b, p)
        p += 8 + nl
        (nd,) = struct.unpack_from("<I", b, p)
        p += 4 + 8 * nd + 4 + 8
    data = (p + align - 1) // align * align
    kv = gguf_str(key.encode()) + struct.pack("<I", 8) + gguf_str(value.encode())
    head = struct.pack("<4sIQQ", magic, version, n_tensors, n_kv + 1) + kv + b[24:p]
    head += b"\0" * ((-len(head)) % align)
    open(dst, "wb").write(head + b[data:])


if __name__ == "__main__":
    main(*sys.argv[1:5])
