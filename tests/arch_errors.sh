#!/usr/bin/env bash
# Bad architecture inputs through the CLI: GGUFs of an unknown architecture, with a missing or a
# mis-shaped tensor, with quantized rows that are not whole blocks; Hugging Face folders whose safetensors header lies or whose config names an
# unknown architecture. Each must exit non-zero with one line naming the file and the problem.
set -u
BIN=${T2_BIN:-build/bin}
PY=/usr/bin/python3
. "$(dirname "$0")/expect.sh"
T2="$BIN/t2"
[ -x "$T2" ] || { echo "FAIL: no t2 at $T2"; exit 1; }
[ -x "$PY" ] || { echo "SKIP: $PY (to patch test files) not found"; exit 77; }

shape="--dim 32 --hidden 40 --layers 2 --heads 4 --kv-heads 2 --vocab 50 --seq-len 32"
run "$T2" init -o "$tmp/llama.gguf" $shape
run "$T2" init -o "$tmp/qwen2.gguf" --arch qwen2 $shape
run "$T2" init -o "$tmp/qwen3.gguf" --arch qwen3 --head-dim 12 $shape

# patch(IN, OUT, OLD, NEW): replace the first OLD by NEW (same length) in a binary file
patch() {
    "$PY" -c 'import sys
b = open(sys.argv[1], "rb").read()
o, n = sys.argv[3].encode(), sys.argv[4].encode()
assert len(o) == len(n) and o in b
open(sys.argv[2], "wb").write(b.replace(o, n, 1))' "$@" ||
        { echo "setup failed: patch $*"; exit 1; }
}
logits() { "$T2" logits -m "$1" --tokens 1,2 -o "$tmp/out.f32"; }

# general.architecture is the first key: its value is the first "llama" in the file
patch "$tmp/llama.gguf" "$tmp/mamba.gguf" llama mamba
expect_fail "GGUF of an unknown architecture" "mamba.gguf: architecture 'mamba' is not supported" \
    logits "$tmp/mamba.gguf"
patch "$tmp/qwen3.gguf" "$tmp/missing.gguf" blk.1.attn_k_norm.weight blk.1.attn_k_norX.weight
expect_fail "GGUF with a missing tensor" \
    "missing.gguf: tensor 'blk.1.attn_k_norm.weight' not found" \
    logits "$tmp/missing.gguf"
# swap the names of q's bias (32) and k's bias (16): both mis-shaped
patch "$tmp/qwen2.gguf" "$tmp/s1.gguf" blk.0.attn_q.bias blk.0.attn_X.bias
patch "$tmp/s1.gguf" "$tmp/s2.gguf" blk.0.attn_k.bias blk.0.attn_q.bias
patch "$tmp/s2.gguf" "$tmp/shape.gguf" blk.0.attn_X.bias blk.0.attn_k.bias
expect_fail "GGUF with a mis-shaped tensor" \
    "shape.gguf: tensor 'blk.0.attn_q.bias' has shape \[16\], expected \[32\]" \
    logits "$tmp/shape.gguf"
patch "$tmp/qwen3.gguf" "$tmp/qwen9.gguf" qwen3 qwen9
expect_fail "GGUF of another unknown architecture" \
    "qwen9.gguf: architecture 'qwen9' is not supported" \
    logits "$tmp/qwen9.gguf"

# a Q4_K tensor whose rows (128) are not whole 256-element blocks
"$PY" -c 'import struct, sys
name = b"blk.0.ffn_down.weight"
h = b"GGUF" + struct.pack("<IQQ", 3, 1, 0) + struct.pack("<Q", len(name)) + name
h += struct.pack("<IQQIQ", 2, 128, 2, 12, 0)  # 2 dims: 128 x 2, type 12 (Q4_K), offset 0
h += bytes(-len(h) % 32) + bytes(2 * 144)
open(sys.argv[1], "wb").write(h)' "$tmp/rowlen.gguf"
expect_fail "quantized rows not a whole number of blocks" \
    "rowlen.gguf: tensor 'blk.0.ffn_down.weight': Q4_K row length 128 is not a multiple of 256" \
    logits "$tmp/rowlen.gguf"

# Hugging Face folders
hf() { # hf DIR ARCH_CLASS: a small config.json
    mkdir -p "$1"
    printf '{"architectures": ["%s"], "hidden_size": 8, "intermediate_size": 8,
 "num_hidden_layers": 1, "num_attention_heads": 2, "vocab_size": 4,
 "max_position_embeddings": 16}\n' "$2" > "$1/config.json"
}
# st FILE HEADER_JSON DATA_BYTES: a safetensors file with the given header and zero data
st() {
    "$PY" -c 'import sys, struct
h = sys.argv[2].encode()
open(sys.argv[1], "wb").write(struct.pack("<Q", len(h)) + h + bytes(int(sys.argv[3])))' "$@"
}
hf "$tmp/gpt2" GPT2LMHeadModel
expect_fail "HF config of an unknown architecture" \
    "gpt2/config.json: architecture 'GPT2LMHeadModel' is not supported" \
    "$T2" convert "$tmp/gpt2" "$tmp/o.gguf"
hf "$tmp/lie" LlamaForCausalLM
st "$tmp/lie/model.safetensors" \
    '{"model.embed_tokens.weight": {"dtype": "F32", "shape": [4, 8], "data_offsets": [0, 128]}}' 64
expect_fail "safetensors header lying about offsets" \
    "model.safetensors: tensor 'model.embed_tokens.weight': data_offsets \[0, 128\] past the end of\
 the data section \(64 bytes\)" \
    "$T2" convert "$tmp/lie" "$tmp/o.gguf"
st "$tmp/lie/model.safetensors" \
    '{"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
      "b": {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]}}' 24
expect_fail "safetensors tensors overlapping" "model.safetensors: tensors 'a' and 'b' overlap" \
    "$T2" convert "$tmp/lie" "$tmp/o.gguf"
st "$tmp/lie/model.safetensors" \
    '{"a": {"dtype": "F32", "shape": [5], "data_offsets": [0, 16]}}' 16
expect_fail "safetensors size not matching the shape" \
    "tensor 'a': data_offsets \[0, 16\] hold 16 bytes but F32 of this shape needs 20" \
    "$T2" convert "$tmp/lie" "$tmp/o.gguf"
printf '\377\377\377\377\0\0\0\0{}' > "$tmp/lie/model.safetensors"
expect_fail "safetensors header length past the file" \
    "model.safetensors: header length 4294967295 does not fit the file" \
    "$T2" convert "$tmp/lie" "$tmp/o.gguf"
st "$tmp/lie/model.safetensors" '{"a": [1, 2' 0
expect_fail "safetensors header not JSON" "model.safetensors: header is not valid JSON" \
    "$T2" convert "$tmp/lie" "$tmp/o.gguf"
st "$tmp/lie/model.safetensors" \
    '{"model.embed_tokens.weight": {"dtype": "F32", "shape": [4, 4], "data_offsets": [0, 64]}}' 64
expect_fail "HF checkpoint with a mis-shaped tensor" \
    "model.safetensors: tensor 'model.embed_tokens.weight' has shape \[4, 4\], expected \[4, 8\]" \
    "$T2" convert "$tmp/lie" "$tmp/o.gguf"
st "$tmp/lie/model.safetensors" \
    '{"model.embed_tokens.weight": {"dtype": "F32", "shape": [4, 8], "data_offsets": [0, 128]}}' 128
expect_fail "HF checkpoint with a missing tensor" "lie: tensor 'model.norm.weight' not found" \
    "$T2" convert "$tmp/lie" "$tmp/o.gguf"
[ ! -e "$tmp/o.gguf" ] || { echo "FAIL: a failed convert left $tmp/o.gguf"; fail=$((fail+1)); }
expect_end
