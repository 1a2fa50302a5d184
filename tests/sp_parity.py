#!/usr/bin/python3
"""SentencePiece parity: T2's tokenizer (tests/tok_encode on the llama2.c tokenizer.bin and on
the GGUF vocabulary) must encode exactly like SentencePiece (tokenizer.model, sp.encode(s))
and decode back to the text.

Run with /usr/bin/python3 (Debian's python3-sentencepiece). Environment: T2_ASSETS (shared
assets folder), T2_BIN (folder with tok_encode). Exits 77 (skip) when sentencepiece or the
assets are missing.

Strings that differ by design are listed in EXPECTED_DIFFERENCES with the reason and the exact
pieces each side must produce, so the test fails if either side changes.
"""
import os
import subprocess
import sys

SKIP = 77


def skip(msg):
    print("SKIP: " + msg)
    sys.exit(SKIP)


try:
    import sentencepiece as spm
except ImportError:
    skip("python sentencepiece module not available (apt install python3-sentencepiece)")

ASSETS = os.environ.get("T2_ASSETS",
                        os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                     "..", "..", "shared", "assets"))
BIN = os.environ.get("T2_BIN", "")
MODEL = os.path.join(ASSETS, "models", "tokenizer.model")
TOKBIN = os.path.join(ASSETS, "models", "tokenizer.bin")
GGUF = os.path.join(ASSETS, "models", "llama-2-tiny-random.gguf")
STORIES = os.path.join(ASSETS, "data", "tinystories", "tinystories_val_slice.txt")
TOOL = os.path.join(BIN, "tok_encode")

for p in (MODEL, TOKBIN, STORIES):
    if not os.path.exists(p):
        skip(p + " not found (set T2_ASSETS)")
if not os.access(TOOL, os.X_OK):
    print("FAIL: %s not found or not executable (set T2_BIN; build target tok_encode)" % TOOL)
    sys.exit(1)

sp = spm.SentencePieceProcessor(model_file=MODEL)

# --- the strings ------------------------------------------------------------------------------

CRAFTED = [
    # punctuation and digits (Llama splits digits into single tokens)
    "Hello, world!", "Hello world.", "What?!", "(a) [b] {c} <d>", "\"quoted\" and 'single'",
    "a,b;c:d", "...", "!!!???", "#hashtag @user $100 %50 ^caret &amp *star",
    "0", "7", "42", "1234567890", "3.14159", "1,000,000", "2024-01-31", "12:30pm",
    "v1.2.3-rc4", "0x1F", "1e-10", "-273.15", "+1 (555) 123-4567",
    # whitespace: multiple, leading, trailing, tabs, newlines, carriage returns
    " ", "  ", "   ", "          ", "a b", "a  b", "a   b", "a    b", "a         b",
    " leading", "  two leading", "trailing ", "trailing  ", "  both  ", "x   ",
    "tab\there", "\t", "\tlead tab", "two\t\ttabs", "line\nbreak", "\n", "\n\n",
    "a\n\nb", "crlf\r\nline", "\r", "mixed \t \n space", "ends with newline\n",
    "Hello  world", "Once upon a time,  there was", "indent\n    code()",
    # letters and accents
    "Once upon a time", "once upon a time", "ONCE UPON A TIME", "café", "naïve résumé",
    "Ångström", "façade", "jalapeño", "Zürich", "Crème brûlée", "ǅemal", "Ærøskøbing",
    "ß", "İstanbul", "Œuvre", "Dvořák", "Łódź", "Ελληνικά", "Русский язык", "עברית",
    "العربية", "हिन्दी", "ภาษาไทย", "Tiếng Việt",
    # CJK
    "日本語", "日本語のテキスト", "中文字符", "你好，世界！", "한국어", "漢字とかな",
    "東京 Tokyo", "「引用」",
    # emoji and other symbols (most need byte fallback)
    "😀", "😀 ok", "I ❤ you", "👍🏽", "👨‍👩‍👧", "🇫🇷", "★☆", "→ ← ↑ ↓", "∑ ∫ √ ∞ ≈ ≠",
    "Ω≈ç√∫", "™ © ®", "€100 £50 ¥1000", "°C", "½ ¾", "µs",
    # rare characters that need byte fallback
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "𐍈", "ꙮ", "\u0300", "e\u0301", "\u200b", "a\u00a0b", "\ufeffbom", "\ufffd",
    "\u0007bell", "\u001b[31m", "\u007f", "\U0010fffd",
    # very long words and repetitions
    "a" * 100, "ab" * 60, "supercalifragilisticexpialidocious",
    "pneumonoultramicroscopicsilicovolcanoconiosis", "x" * 1000, "." * 50, "-" * 80,
    "=" * 33 + ">", "abc " * 50, "😀" * 20, "日本" * 30,
    # TinyStories-like text with quotes (mojibake present in the data set)
    "Lily said, \u201cLet\u2019s go!\u201d", "It\u2019s a dog\u2014a big one.",
    "\u00e2\u20ac\u0153Hi\u00e2\u20ac\u009d",
]

# (name, text as bytes, reason, SentencePiece pieces, T2 pieces)
EXPECTED_DIFFERENCES = [
    ("literal U+2581",
     "\u2581x".encode(),
     "SentencePiece treats '\u2581' in the input as its whitespace symbol (= a space); T2 "
     "stores vocabulary spaces as ' ', so a literal U+2581 is an ordinary character that is "
     "not in the vocabulary and falls back to its UTF-8 bytes (and decodes back to itself)",
     ["\u2581", "\u2581x"],
     ["\u2581", "<0xE2>", "<0x96>", "<0x81>", "x"]),
    ("literal U+2581 between words",
     "a\u2581b".encode(),
     "as above: SentencePiece reads it as 'a b'",
     ["\u2581a", "\u2581b"],
     ["\u2581a", "<0xE2>", "<0x96>", "<0x81>", "b"]),
    ("invalid UTF-8 byte 0xFF",
     b"a\xffb",
     "SentencePiece replaces malformed UTF-8 with U+FFFD; T2 keeps the byte as its byte "
     "piece so that decoding gives back the input bytes",
     ["\u2581a", "\ufffd", "b"],
     ["\u2581a", "<0xFF>", "b"]),
    ("stray continuation byte after a character",
     b"\xc3\xa9\xa9",
     "as above (SentencePiece: U+FFFD; T2: byte piece)",
     ["\u2581\u00e9", "\ufffd"],
     ["\u2581\u00e9", "<0xA9>"]),
    ("truncated 3-byte sequence",
     b"\xe6\x97",
     "as above: SentencePiece makes one U+FFFD per malformed byte (and merges them)",
     ["\u2581", "\ufffd\ufffd"],
     ["\u2581", "<0xE6>", "<0x97>"]),
    ("UTF-8 encoded surrogate",
     b"x\xed\xa0\x80y",
     "surrogates are not valid UTF-8: SentencePiece gives U+FFFD, T2 the three bytes",
     ["\u2581x", "\ufffd\ufffd", "\ufffd", "y"],
     ["\u2581x", "<0xED>", "<0xA0>", "<0x80>", "y"]),
]


def stories_lines():
    with open(STORIES, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f if line.strip()]


def stories_paragraphs(n):
    """The first n blank-line-separated chunks, with their inner newlines."""
    with open(STORIES, encoding="utf-8") as f:
        chunks = [c for c in f.read().split("\n\n") if c.strip()]
    return chunks[:n]


def run_tool(args, records):
    """Run tok_encode with NUL-separated records; returns stdout split per record."""
    data = b"".join(r + b"\0" for r in records)
    res = subprocess.run([TOOL] + args, input=data, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, check=False)
    if res.returncode != 0:
        print("FAIL: tok_encode %s exited %d: %s" % (" ".join(args), res.returncode,
                                                     res.stderr.decode(errors="replace")))
        sys.exit(1)
    return res.stdout


def encode_all(tokfile, extra_args, records):
    out = run_tool(["-0", tokfile] + extra_args, records).decode()
    lines = out.split("\n")
    assert lines[-1] == "", "tok_encode output does not end with a newline"
    lines = lines[:-1]
    if len(lines) != len(records):
        print("FAIL: tok_encode printed %d lines for %d records" % (len(lines), len(records)))
        sys.exit(1)
    return [[int(x) for x in line.split()] for line in lines]


def decode_all(tokfile, extra_args, id_lists):
    recs = [" ".join(str(i) for i in ids).encode() for ids in id_lists]
    out = run_tool(["-0", "-d", "-s", tokfile] + extra_args, recs)
    parts = out.split(b"\0")
    assert parts[-1] == b""
    return parts[:-1]


def pieces(ids):
    return [sp.id_to_piece(i) for i in ids]


def main():
    texts = stories_lines() + stories_paragraphs(100) + CRAFTED
    records = [t.encode("utf-8") for t in texts]
    for t in texts:
        assert "\0" not in t

    targets = [("tokenizer.bin", TOKBIN, ["32000"])]
    gguf_ok = os.path.exists(GGUF)
    if gguf_ok:
        targets.append(("llama-2-tiny-random.gguf", GGUF, []))
    else:
        print("note: %s not found, GGUF parity skipped" % GGUF)

    failures = 0
    for label, tokfile, extra in targets:
        ours = encode_all(tokfile, extra, records)
        matched = 0
        for text, got in zip(texts, ours):
            want = sp.encode(text)
            if got == want:
                matched += 1
            else:
                failures += 1
                if failures <= 20:
                    print("MISMATCH (%s) %r\n  sentencepiece: %s\n  t2:            %s" %
                          (label, text[:100], pieces(want)[:40], pieces(got)[:40]))
        # Decoding our ids (after BOS, i.e. dropping the dummy prefix) gives the text back,
        # and SentencePiece decodes them to the same text.
        decoded = decode_all(tokfile, extra, ours)
        rt_ok = 0
        for rec, ids, dec in zip(records, ours, decoded):
            sp_dec = sp.decode(ids).encode("utf-8")
            if dec == rec and sp_dec == rec:
                rt_ok += 1
            else:
                failures += 1
                if failures <= 20:
                    print("ROUND TRIP (%s) %r -> t2 %r, sentencepiece %r" %
                          (label, rec[:80], dec[:80], sp_dec[:80]))
        print("%s: %d of %d strings encode exactly as sentencepiece; %d round-trip" %
              (label, matched, len(texts), rt_ok))

        # Expected, explained differences: both sides must produce exactly the listed pieces.
        recs = [d[1] for d in EXPECTED_DIFFERENCES]
        ours_d = encode_all(tokfile, extra, recs)
        decoded_d = decode_all(tokfile, extra, ours_d)
        diff_ok = 0
        for (name, raw, reason, want_sp, want_t2), got, dec in zip(EXPECTED_DIFFERENCES,
                                                                     ours_d, decoded_d):
            sp_got = pieces(sp.encode(raw))
            ok = sp_got == want_sp and pieces(got) == want_t2 and sp_got != pieces(got)
            ok = ok and dec == raw
            if ok:
                diff_ok += 1
            else:
                failures += 1
                print("EXPECTED DIFFERENCE CHANGED (%s) %s: %r\n  reason: %s\n"
                      "  sentencepiece: %s (expected %s)\n  t2: %s (expected %s)\n"
                      "  t2 decode: %r" % (label, name, raw, reason, sp_got, want_sp,
                                           pieces(got), want_t2, dec))
        print("%s: %d of %d expected differences behave as documented" %
              (label, diff_ok, len(EXPECTED_DIFFERENCES)))

    if failures:
        print("FAIL: %d failures" % failures)
        return 1
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
