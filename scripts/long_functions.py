#!/usr/bin/env python3
"""List the C functions longer than N lines (from the line that names the function to its closing
brace), outside tests/ and the SIMD kernels (shared/engine/kernels*.c).

Usage: long_functions.py [-n N] [SOURCE_DIR]   (default N = 120, SOURCE_DIR = the repository)
Prints "FILE:LINE: NAME is L lines (limit N)" for each, longest first; exits 1 if any, else 0.
With --all, prints every function with its length (longest first) and exits 0.
"""
import argparse
import os
import re
import sys

SKIP_DIRS = {"tests", "build", ".git"}
IDENT = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*\($")


def excluded(rel):
    parts = rel.split(os.sep)
    if parts[0] in SKIP_DIRS or parts[0].startswith("build"):
        return True
    return parts[:2] == ["shared", "engine"] and re.match(r"kernels.*\.c$", parts[-1]) is not None


def blank_comments_and_strings(text):
    """The text with comments, string and character literals replaced by spaces (newlines kept),
    so braces inside them do not count."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
            out.append(c + re.sub(r"[^\n]", " ", text[i + 1:j - 1]) + c)
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


def blank_preprocessor(text):
    """Preprocessor lines (with their continuations) replaced by empty lines."""
    lines = text.split("\n")
    cont = False
    for k, line in enumerate(lines):
        if cont or line.lstrip().startswith("#"):
            cont = line.endswith("\\")
            lines[k] = ""
    return "\n".join(lines)


def functions(path):
    """(name, first line, length in lines) of each function defined in the file at path."""
    with open(path, encoding="utf-8", errors="replace") as f:
        code = blank_preprocessor(blank_comments_and_strings(f.read()))
    found = []
    depth, head_start, line = 0, 0, 1
    open_line, name, name_line = 0, None, 0
    for i, c in enumerate(code):
        if c == "\n":
            line += 1
        elif c == "{":
            if depth == 0:
                head = code[head_start:i]
                name, name_line = function_name(head, line - head.count("\n"))
                open_line = line
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                if name:
                    found.append((name, name_line, line - name_line + 1))
                name = None
                head_start = i + 1
        elif c == ";" and depth == 0:
            head_start = i + 1
    return found


def function_name(head, first_line):
    """The function's name and its line when head (the text before a top-level '{') is a function
    signature, else (None, 0)."""
    stripped = head.strip()
    if not stripped.endswith(")") or "=" in stripped.split("(")[0]:
        return None, 0
    if re.match(r"(typedef|struct|union|enum)\b[^(]*$", stripped):
        return None, 0
    # The name is the identifier before the first '(' at nesting level 0.
    lvl = 0
    for k, c in enumerate(head):
        if c == "(":
            if lvl == 0:
                m = IDENT.search(head[:k + 1])
                if not m:
                    return None, 0
                return m.group(1), first_line + head[:m.start()].count("\n")
            lvl += 1
        elif c == ")":
            lvl -= 1
    return None, 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=120, help="longest length allowed (lines)")
    ap.add_argument("--all", action="store_true", help="print every function's length")
    ap.add_argument("src", nargs="?", default=os.path.join(os.path.dirname(__file__), ".."))
    args = ap.parse_args()
    src = os.path.normpath(args.src)
    rows = []
    for root, dirs, files in os.walk(src):
        dirs[:] = sorted(d for d in dirs if not excluded(os.path.relpath(os.path.join(root, d), src)))
        for fn in sorted(files):
            rel = os.path.relpath(os.path.join(root, fn), src)
            if fn.endswith(".c") and not excluded(rel):
                rows += [(length, rel, ln, name) for name, ln, length in functions(os.path.join(root, fn))]
    rows.sort(key=lambda r: (-r[0], r[1], r[2]))
    if args.all:
        for length, rel, ln, name in rows:
            print(f"{length:5d} {rel}:{ln}: {name}")
        return 0
    long_ones = [r for r in rows if r[0] > args.n]
    for length, rel, ln, name in long_ones:
        print(f"{rel}:{ln}: {name} is {length} lines (limit {args.n})")
    if not rows:
        print(f"FAIL: no C function found under {src}")
        return 1
    print(f"{len(rows)} functions, {len(long_ones)} longer than {args.n} lines")
    return 1 if long_ones else 0


if __name__ == "__main__":
    sys.exit(main())
