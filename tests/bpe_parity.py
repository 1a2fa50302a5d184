#!/usr/bin/python3
"""Byte-level BPE parity: T2's tokenizer for Llama 3 and Qwen3 against an independent reference,
@lenml/tokenizers (transformers.js's tokenizers) run by node on the same tokenizer.json.

    bpe_parity.py BPE_ENCODE     (the tests/bpe_encode tool; T2_BIN must hold t2)

For each vocabulary (../shared/assets/tokenizers/llama3, qwen3) and each way T2 loads it (the
tokenizer.json itself, and a GGUF that T2 writes from it with t2_tok_hf_write_gguf), over
more than 5,000 texts (TinyStories, GSM8K, MBPP, ARC, code, whitespace runs, digits, CJK,
emoji, combining marks, special-token spellings, invalid UTF-8):
  - ids: T2 with T2_TOK_PARSE_SPECIAL equals the reference (which always parses special
    tokens), except for texts with U+0085 or U+FEFF, where JavaScript's \s differs from the
    White_Space property of Hugging Face's regex engine and T2 (see JS_SPACE_DIFF). The reference is JavaScript, whose strings cannot hold invalid UTF-8: it sees the
    text decoded by TextDecoder (each maximal invalid subpart -> U+FFFD), and T2 encodes those
    same replaced bytes for this comparison;
  - round trip: T2's decode(encode(x)) == x on the original bytes, invalid UTF-8 included
    (for Qwen, whose normalizer is NFC: == NFC(x) by Python's unicodedata, invalid bytes kept),
    both with and without T2_TOK_PARSE_SPECIAL; without it no control token appears;
  - `t2 tokenize` prints the same ids (-f FILE, --tokenizer, -m GGUF, --special).
Exits 77 (skip) when the assets, node or tests/node/node_modules are missing.
"""
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import unicodedata

SKIP = 77
HERE = os.path.dirname(os.path.abspath(__file__))
ASSETS = os.environ.get("T2_ASSETS") or os.path.join(HERE, "..", "..", "shared", "assets")
NODE_DIR = os.path.join(HERE, "node")


def skip(msg):
    print("SKIP: " + msg)
    sys.exit(SKIP)


def jsonl(path, limit):
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                rows.append(json.loads(line))
            if len(rows) >= limit:
                break
    return rows


def data_cases():
    d = os.path.join(ASSETS, "data")
    out = []
    with open(os.path.join(d, "tinystories", "tinystories_val_slice.txt"), "rb") as f:
        slice_bytes = f.read()
    paras = slice_bytes.split(b"\n\n")  # all of the slice, four paragraphs a text
    out += [b"\n\n".join(paras[i:i + 4]) for i in range(0, len(paras), 4)]
    for r in jsonl(os.path.join(d, "gsm8k", "test.jsonl"), 800):
        out.append(r["question"].encode())
        if len(out) % 2 == 0:
            out.append(r["answer"].encode())
    for r in jsonl(os.path.join(d, "mbpp", "mbpp.jsonl"), 400):
        out.append(r["text"].encode())
        out.append((r["code"] + "\n" + "\n".join(r["test_list"]) + "\n").encode())
    for r in jsonl(os.path.join(d, "arc", "ARC-Easy-Test.jsonl"), 400):
        q = r["question"]
        choices = " ".join("(%s) %s" % (c["label"], c["text"]) for c in q["choices"])
        out.append((q["stem"] + "\n" + choices + "\nAnswer:").encode())
    return out


SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>", "<|start_header_id|>",
            "<|end_header_id|>", "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<think>",
            "</think>", "<tool_call>", "<|fim_prefix|>", "<|reserved_special_token_5|>",
            "<|im_start", "|>", "<|", "<|im_end|x"]
PIECES = ["Hello", " world", "It's", "I'M", "YOU'RE", "we'Ve", "they'LL", "'d", "'ſ", "don'T",
          "12345", "3.14159", "1,000,000", "0x1F", "٣٤٥", "²³", "Ⅻ", "日本語", "中文测试", "한국어",
          "ｶﾀｶﾅ", "😀", "👨‍👩‍👧", "🇫🇷", "👍🏽", "e\u0301", "a\u0308\u0301",
          "\u1100\u1161\u11a8", "Vie\u0323\u0302t", "n\u0303", "é", "ﬁ", "Å", "Ω", "\u0958",
          "x\u0327\u0301",
          "def f(x):\n    return x**2\n", "if (a && b) { c++; }\n", "#include <stdio.h>",
          "    ", "\t", "\n", "\r\n", "\n\n\n", "  \n  ", " \t \n", "\u00a0", "\u3000", "\u2003",
          "\u0085", "\ufeff", "\u180e", "\u2028", "\u200b",
          "!!!", "...", "—", "«»", "$", "@user", "https://x.org/a?b=c", "'", "\"", "<", ">"]
INVALID = [b"\xff", b"\xfe\xfe", b"\xc3", b"\xc3(", b"\xe2\x82", b"\xe2\x82(", b"\xf0\x9f\x98",
           b"\xed\xa0\x80", b"\xc0\xaf", b"\xe0\x80\xaf", b"\xf4\x90\x80\x80", b"\x80", b"\xbf\x80",
           b"\xf8\x88\x80\x80\x80", b"\x00", b"a\x00b"]


def synthetic_cases(rng):
    out = []
    ws = [" ", "  ", "\t", "\n", "\r", "\r\n", "\u00a0", "\u3000", "\u2009", "\x0b", "\x0c"]
    for _ in range(400):  # whitespace runs around words
        s = "".join(rng.choice(ws) if rng.random() < 0.6 else rng.choice(PIECES)
                    for _ in range(rng.randint(1, 12)))
        out.append(s.encode())
    for _ in range(300):  # digits
        out.append(" ".join(str(rng.randint(0, 10 ** rng.randint(1, 12)))
                            for _ in range(rng.randint(1, 5))).encode())
    for _ in range(500):  # mixtures, special-token spellings
        parts = [rng.choice(PIECES + SPECIALS) for _ in range(rng.randint(1, 8))]
        out.append("".join(parts).encode())
    for _ in range(300):  # invalid UTF-8 among valid text
        parts = [rng.choice(INVALID) if rng.random() < 0.4 else rng.choice(PIECES).encode()
                 for _ in range(rng.randint(1, 6))]
        out.append(b"".join(parts))
    for _ in range(100):  # random bytes
        out.append(bytes(rng.randrange(256) for _ in range(rng.randint(1, 24))))
    out += [p.encode() for p in PIECES + SPECIALS] + INVALID + [b" " * 40, b"\n" * 9, b"9" * 50]
    return out


# The reference's regex is JavaScript's, whose \s is not the White_Space property that Hugging
# Face's tokenizers (Oniguruma) and T2 use: it has U+FEFF and lacks U+0085. Texts with either
# are left out of the id comparison (still round-tripped); the count is printed.
JS_SPACE_DIFF = ("\u0085", "\ufeff")


def js_space_differs(lossy_hex):
    text = bytes.fromhex(lossy_hex).decode("utf-8")  # valid: it comes from a JS string
    return any(c in text for c in JS_SPACE_DIFF)


def expected_round_trip(x, nfc):
    if not nfc:
        return x
    s = x.decode("utf-8", "surrogateescape")
    return unicodedata.normalize("NFC", s).encode("utf-8", "surrogateescape")


def main():
    if len(sys.argv) != 2:
        print("usage: bpe_parity.py BPE_ENCODE", file=sys.stderr)
        return 2
    tool = sys.argv[1]
    t2 = os.path.join(os.environ.get("T2_BIN", os.path.dirname(tool)), "t2")
    tok_dir = os.path.join(ASSETS, "tokenizers")
    if not os.path.isdir(os.path.join(tok_dir, "llama3")):
        skip("no tokenizers in %s (the shared assets are absent)" % tok_dir)
    if not shutil.which("node"):
        skip("node is not installed")
    if not os.path.isdir(os.path.join(NODE_DIR, "node_modules", "@lenml", "tokenizers")):
        skip("tests/node/node_modules is missing: run `npm ci --prefix tests/node`")
    rng = random.Random(1234)
    cases = [c for c in data_cases() + synthetic_cases(rng) if c]
    print("%d texts" % len(cases))
    assert len(cases) >= 5000, "fewer than 5,000 texts: are the data files complete?"
    failed = 0
    checks = 0
    with tempfile.TemporaryDirectory() as tmp:
        cases_path = os.path.join(tmp, "cases.hex")
        with open(cases_path, "w") as f:
            for c in cases:
                f.write(c.hex() + "\n")
        for name, nfc in (("llama3", False), ("qwen3", True)):
            n_fail, n_checks = check_vocab(os.path.join(tok_dir, name), name, nfc, cases,
                                           cases_path, tool, t2, tmp)
            failed += n_fail
            checks += n_checks
    print("%d passed, %d failed" % (checks - failed, failed))
    return 1 if failed else 0


def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, **kw)
    if r.returncode != 0:
        print("FAIL: %s exited %d: %s" % (" ".join(cmd), r.returncode,
                                         r.stderr.decode(errors="replace").strip()))
        sys.exit(1)
    return r.stdout


def read_lines(path):
    with open(path) as f:
        return f.read().split("\n")[:-1]


def check_vocab(vdir, name, nfc, cases, cases_path, tool, t2, tmp):
    ref_path = os.path.join(tmp, name + ".ref")
    run(["node", os.path.join(NODE_DIR, "ref_encode.mjs"), vdir, cases_path, ref_path],
        cwd=NODE_DIR)
    ref = [l.split("\t") for l in read_lines(ref_path)]
    assert len(ref) == len(cases), "reference gave %d lines for %d texts" % (len(ref), len(cases))
    lossy_path = os.path.join(tmp, name + ".lossy.hex")
    with open(lossy_path, "w") as f:
        f.write("".join(r[0] + "\n" for r in ref))
    gguf = os.path.join(tmp, name + ".gguf")
    run([tool, "gguf", os.path.join(vdir, "tokenizer.json"),
         os.path.join(vdir, "tokenizer_config.json"), gguf])
    failed = checks = 0
    sources = (("json", os.path.join(vdir, "tokenizer.json")), ("gguf", gguf))
    for kind, path in sources:
        out_lossy, out_orig = (os.path.join(tmp, "%s.%s.%s" % (name, kind, s))
                               for s in ("lossy", "orig"))
        run([tool, "run", kind, path, lossy_path, out_lossy, cases_path, out_orig])
        lossy, orig = read_lines(out_lossy), read_lines(out_orig)
        shown = failed_before = failed
        for i, x in enumerate(cases):
            checks += 1
            ids = lossy[i].split("\t")[0]
            _, dec_special, dec_plain, n_control = orig[i].split("\t")
            want = expected_round_trip(x, nfc).hex()
            problems = []
            if ids != ref[i][1] and not js_space_differs(ref[i][0]):
                problems.append("ids differ: T2 [%s] reference [%s]" % (ids[:300], ref[i][1][:300]))
            if dec_special != want:
                problems.append("decode(encode(x, special)) != x")
            if dec_plain != want:
                problems.append("decode(encode(x)) != x")
            if n_control != "0":
                problems.append("%s control tokens without PARSE_SPECIAL" % n_control)
            if problems:
                failed += 1
                if failed - failed_before <= 5:
                    print("FAIL %s (%s) text %d %r: %s" % (name, kind, i, x[:120],
                                                           "; ".join(problems)))
        print("%s from %s: %d texts, %d failed (%d with U+0085/U+FEFF: ids not compared)"
              % (name, kind, len(cases), failed - failed_before,
                 sum(js_space_differs(r[0]) for r in ref)))
    stories = os.path.join(ASSETS, "data", "tinystories", "tinystories_val_slice.txt")
    print("%s: encoding the TinyStories slice (not a check): %s" % (
        name, run([tool, "time", "json", sources[0][1], stories]).decode().strip()))
    f_cli, n_cli = check_cli(t2, name, vdir, gguf, cases, ref, tmp)
    return failed + f_cli, checks + n_cli


def check_cli(t2, name, vdir, gguf, cases, ref, tmp):
    """`t2 tokenize` with -f (bytes exact), --tokenizer and -m, --special, --bos."""
    picks = [i for i, c in enumerate(cases) if c.endswith(b"\n") and b"<|" in c][:1]
    picks += [i for i, c in enumerate(cases) if c.endswith(b"\n\n")][:1]
    failed = 0
    for i in picks:
        path = os.path.join(tmp, "text.txt")
        with open(path, "wb") as f:
            f.write(bytes.fromhex(ref[i][0]))
        for src in (["--tokenizer", os.path.join(vdir, "tokenizer.json")], ["-m", gguf]):
            got = run([t2, "tokenize", "--special", "-f", path] + src).decode().strip()
            if got != ref[i][1]:
                failed += 1
                print("FAIL t2 tokenize %s %s on text %d: %r" % (name, src[0], i, got[:200]))
    bos = run([t2, "tokenize", "--bos", "--tokenizer", os.path.join(vdir, "tokenizer.json"),
               "Hi"]).decode().split()
    plain = run([t2, "tokenize", "-m", gguf, "Hi"]).decode().split()
    want_bos = ["128000"] if name == "llama3" else []  # Qwen has no BOS
    if bos != want_bos + plain:
        failed += 1
        print("FAIL t2 tokenize --bos %s: %s vs %s" % (name, bos, plain))
    return failed, 2 * len(picks) + 1


if __name__ == "__main__":
    sys.exit(main())
