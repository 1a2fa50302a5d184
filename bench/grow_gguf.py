#!/usr/bin/python3
"""grow_gguf.py SMALL.gguf OUT.gguf DIM HIDDEN LAYERS HEADS KV_HEADS

A large random llama model for memory tests, streamed to disk: `t2 init` holds every weight in
F32 (32 GB for 8 B parameters). SMALL.gguf is a small `t2 init --type q4_0` file of the same
vocabulary (its metadata and tokenizer are kept; its shapes are rewritten); the weights become
uniform random Q4_0 (Q8_0 for output.weight, as `t2 init` writes it), the norms and rope factors
ones. The Llama-3.1-8B shape of issue 16:
  t2 init -o small.gguf --arch llama --dim 128 --hidden 448 --layers 2 --heads 4 --kv-heads 1 \
      --vocab 128256 --seq-len 131072 --type q4_0 --rope-scaling llama3 -z llama3/tokenizer.json
  /usr/bin/python3 bench/grow_gguf.py small.gguf l8b.gguf 4096 14336 32 32 8   # 4.8 GB
"""
import struct, sys, numpy as np

src, dst = sys.argv[1], sys.argv[2]
D, F, L, H, K = map(int, sys.argv[3:8])
f = open(src, 'rb'); buf = f.read(); f.close()
o = 0
def rd(fmt):
    global o
    v = struct.unpack_from(fmt, buf, o); o += struct.calcsize(fmt); return v
def rstr():
    n, = rd('<Q'); global o; s = buf[o:o+n]; o += n; return s
SZ = {0:'B',1:'b',2:'H',3:'h',4:'I',5:'i',6:'f',7:'?',10:'Q',11:'q',12:'d'}
def rval(t):
    if t == 8: return rstr()
    if t == 9:
        et, n = rd('<IQ'); return (et, [rval(et) for _ in range(n)])
    return rd('<' + SZ[t])[0]
magic, ver, nt, nkv = rd('<4sIQQ')
kvs = []
for _ in range(nkv):
    k = rstr(); t, = rd('<I'); kvs.append((k, t, rval(t)))
tens = []
for _ in range(nt):
    name = rstr(); nd, = rd('<I'); dims = rd('<%dQ' % nd); t, off = rd('<IQ'); tens.append((name, list(dims), t))
newkv = {b'llama.embedding_length': D, b'llama.feed_forward_length': F, b'llama.block_count': L,
         b'llama.attention.head_count': H, b'llama.attention.head_count_kv': K,
         b'llama.rope.dimension_count': D // H}
out = open(dst, 'wb')
def w(fmt, *v): out.write(struct.pack(fmt, *v))
def wstr(s): w('<Q', len(s)); out.write(s)
def wval(t, v):
    if t == 8: wstr(v); return
    if t == 9:
        et, arr = v; w('<IQ', et, len(arr))
        for x in arr: wval(et, x)
        return
    w('<' + SZ[t], v)
hd = D // H
def shape(name, dims):
    n = name.decode()
    if n.startswith('blk.'):
        parts = n.split('.'); rest = '.'.join(parts[2:])
        m = {'attn_norm.weight': [D], 'ffn_norm.weight': [D], 'attn_q.weight': [D, H*hd],
             'attn_k.weight': [D, K*hd], 'attn_v.weight': [D, K*hd], 'attn_output.weight': [H*hd, D],
             'ffn_gate.weight': [D, F], 'ffn_up.weight': [D, F], 'ffn_down.weight': [F, D]}
        return m[rest]
    if n == 'token_embd.weight' or n == 'output.weight': return [D, dims[1]]
    if n == 'output_norm.weight': return [D]
    if n == 'rope_freqs.weight': return [hd // 2]
    raise SystemExit('unknown tensor ' + n)
newt = []
for name, dims, t in tens:
    if name.startswith(b'blk.') and not name.startswith(b'blk.0.'): continue
    if name.startswith(b'blk.0.'):
        for l in range(L):
            nn = b'blk.%d.' % l + name[len(b'blk.0.'):]
            newt.append((nn, shape(name, dims), t))
    else:
        newt.append((name, shape(name, dims), t))
rope = [x for x in tens if x[0] == b'rope_freqs.weight']
w('<4sIQQ', magic, ver, len(newt), len(kvs))
align = 32
for k, t, v in kvs:
    wstr(k); w('<I', t); wval(t, newkv.get(k, v))
    if k == b'general.alignment': align = v
def nbytes(dims, t):
    n = int(np.prod(dims))
    return n * 4 if t == 0 else n * 2 if t == 1 else n // 32 * (18 if t == 2 else 34)
off = 0
for name, dims, t in newt:
    wstr(name); w('<I', len(dims)); w('<%dQ' % len(dims), *dims); w('<IQ', t, off)
    off += (nbytes(dims, t) + align - 1) // align * align
pad = (-out.tell()) % align; out.write(b'\0' * pad)
rng = np.random.default_rng(1)
for name, dims, t in newt:
    n = nbytes(dims, t)
    if t == 0:
        if name == b'rope_freqs.weight':
            # the small file's factors depend on head_dim: recompute as t2 init does is not
            # needed for a memory/speed test; ones = no scaling
            data = np.ones(dims[0], np.float32).tobytes()
        else:
            data = np.ones(int(np.prod(dims)), np.float32).tobytes()
    elif t in (2, 8):
        fan_in = dims[0]
        bb = 18 if t == 2 else 34
        d = np.float16(1.0 / ((4.6 if t == 2 else 73.0) * np.sqrt(fan_in))).tobytes()
        nb = n // bb
        rows_per = 1 << 16
        for s in range(0, nb, rows_per):
            c = min(rows_per, nb - s)
            blk = np.empty((c, bb), np.uint8)
            blk[:, 0:2] = np.frombuffer(d, np.uint8)
            blk[:, 2:] = rng.integers(0, 256, (c, bb - 2), dtype=np.uint8)
            if t == 8: blk[:, 2:][blk[:, 2:] == 128] = 0
            out.write(blk.tobytes())
        data = b''
    else:
        raise SystemExit('type %d' % t)
    out.write(data)
    out.write(b'\0' * ((-n) % align))
out.close()
print('wrote', dst, len(newt), 'tensors')
