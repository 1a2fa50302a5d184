#!/usr/bin/python3
"""Chat-template parity: `t2 chat --render-only` must render every real chat template
(../shared/assets/templates/*.jinja and the llama3 / qwen3 tokenizer_config.json files) byte
for byte as the reference ../shared/tools/chat-template-ref (Debian's python3-jinja2 configured
as Hugging Face), on the conversations below, with and without the generation prompt. Where the
reference fails (the template raises, or Python raises a TypeError), T2 must fail too, and when
the template raised, T2's message must carry the template's own message.

The reference runs in this process (runpy, the tool's own code with its own argv) so that
Python and Jinja start once; T2 runs as the CLI. Prints a table template x conversations.

Environment: T2_ASSETS (shared assets), T2_BIN (folder with t2). Exits 77 (skip) without
the assets, the reference tool or python3-jinja2.
"""
import concurrent.futures
import contextlib
import io
import json
import os
import runpy
import subprocess
import sys
import tempfile

SKIP = 77


def skip(msg):
    print("SKIP: " + msg)
    sys.exit(SKIP)


try:
    import jinja2  # noqa: F401  (the reference needs it)
except ImportError:
    skip("python3-jinja2 is not installed (apt install python3-jinja2)")

ASSETS = os.environ.get("T2_ASSETS", os.path.join(os.path.dirname(__file__), "../../shared/assets"))
REF = os.path.join(ASSETS, "..", "tools", "chat-template-ref")
T2 = os.path.join(os.environ.get("T2_BIN", "build/bin"), "t2")
if not os.path.isdir(os.path.join(ASSETS, "templates")):
    skip(f"{ASSETS}/templates not found")
if not os.path.exists(REF):
    skip(f"{REF} not found")

TEMPLATES = sorted(os.path.join(ASSETS, "templates", f)
                   for f in os.listdir(os.path.join(ASSETS, "templates")) if f.endswith(".jinja"))
TEMPLATES += [os.path.join(ASSETS, "tokenizers", m, "tokenizer_config.json")
              for m in ("llama3", "qwen3")
              if os.path.exists(os.path.join(ASSETS, "tokenizers", m, "tokenizer_config.json"))]


def m(role, content, **kw):
    d = {"role": role, "content": content}
    d.update(kw)
    return d


TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather \"now\" in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"},
                                                    "days": {"type": "integer", "minimum": 1}},
                   "required": ["city"]}}}
CALL = {"id": "call12345", "type": "function",
        "function": {"name": "get_weather", "arguments": {"city": "Zürich", "days": 2}}}

# name -> conversation (extra top-level keys become template variables)
CONVERSATIONS = {
    "user": {"messages": [m("user", "Hello!")]},
    "sys+user": {"messages": [m("system", "You are a helpful assistant."), m("user", "Hi")]},
    "multi-turn": {"messages": [m("system", "Be brief."), m("user", "What is 2+2?"),
                                m("assistant", "4."), m("user", "And 3+3?")]},
    "assistant-last": {"messages": [m("user", "Say hi"), m("assistant", "Hi!")]},
    "five-turns": {"messages": [m("user", "a"), m("assistant", "b"), m("user", "c"),
                                m("assistant", "d"), m("user", "e")]},
    "empty-user": {"messages": [m("user", "")]},
    "empty-system": {"messages": [m("system", ""), m("user", "Hi")]},
    "non-ascii": {"messages": [m("system", "Réponds en français. 日本語も。"),
                               m("user", "Café ☕, naïve façade, Ελληνικά, русский, 🤖👍🏽")]},
    "whitespace": {"messages": [m("system", "  padded system \n"),
                                m("user", "\n\n  padded user\t \n")]},
    "newlines": {"messages": [m("user", "line 1\nline 2\r\nline 3\n\n\nend")]},
    "jinja-text": {"messages": [m("user", "{{ bos_token }} {% if x %}y{% endif %} {# c #}")]},
    "quotes": {"messages": [m("user", "He said \"hi\" and 'bye' \\ back\\slash {\"a\": [1]}")]},
    "think": {"messages": [m("user", "Think first."),
                           m("assistant", "<think>\nsome reasoning\n</think>\n\nThe answer.")]},
    "think-then-user": {"messages": [m("user", "Q1"),
                                     m("assistant", "<think>r1</think>A1"), m("user", "Q2")]},
    "system-only": {"messages": [m("system", "Only a system prompt.")]},
    "no-messages": {"messages": []},
    "long": {"messages": [m("user", "word " * 400 + "end")]},
    "assistant-first": {"messages": [m("assistant", "I speak first."), m("user", "ok")]},
    "controls": {"messages": [m("user", "tab\there, bell\u0007, nul-free, del\u007f, cr\rx")]},
    "unicode-space": {"messages": [m("system", "\u00a0\u3000 wide spaces \u2003\u00a0"),
                                   m("user", "\u2028sep\u2029")]},
    "date-string": {"messages": [m("user", "What day is it?")], "date_string": "05 Dec 2026"},
    "tools": {"messages": [m("system", "Use tools."), m("user", "Weather in Zürich?")],
              "tools": [TOOL]},
    "tool-call": {"messages": [m("user", "Weather in Zürich?"),
                               m("assistant", "", tool_calls=[CALL]),
                               m("tool", "{\"temp\": 3}", tool_call_id="call12345"),
                               m("user", "Thanks")]},
    "no-thinking": {"messages": [m("user", "Quick answer")], "enable_thinking": False},
    "two-systems": {"messages": [m("system", "first"), m("user", "u"), m("system", "second"),
                                 m("user", "v")]},
}


def reference(template, conv_path, gen):
    """The reference's output bytes and error text (None when it succeeded)."""
    argv = [REF, template, conv_path, "--date", "2026-01-01"]
    if not gen:
        argv.append("--no-generation-prompt")
    out, err = io.StringIO(), io.StringIO()
    saved = sys.argv
    sys.argv = argv
    failed = None
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            runpy.run_path(REF, run_name="__main__")
    except SystemExit as e:
        if e.code:
            failed = err.getvalue().strip() or f"exit {e.code}"
    except Exception as e:  # a TypeError etc. inside the template: the reference fails
        failed = f"{type(e).__name__}: {e}"
    finally:
        sys.argv = saved
    return out.getvalue().encode("utf-8"), failed


def t2(template, conv_path, gen):
    cmd = [T2, "chat", "--render-only", "--chat-template", template, "--messages", conv_path,
           "--date", "2026-01-01"]
    if not gen:
        cmd.append("--no-generation-prompt")
    p = subprocess.run(cmd, capture_output=True, timeout=60)
    return p.stdout, (p.stderr.decode("utf-8", "replace").strip() if p.returncode else None)


def main():
    if not os.access(T2, os.X_OK):
        print(f"FAIL: {T2} not found (set T2_BIN)")
        return 1
    problems, rows = [], []
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for name, conv in CONVERSATIONS.items():
            paths[name] = os.path.join(tmp, name + ".json")
            with open(paths[name], "w", encoding="utf-8") as f:
                json.dump(conv, f, ensure_ascii=False)
        cases = [(t, n, g) for t in TEMPLATES for n in CONVERSATIONS for g in (True, False)]
        with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
            futures = {c: pool.submit(t2, c[0], paths[c[1]], c[2]) for c in cases}
            ours = {c: f.result() for c, f in futures.items()}
        for template in TEMPLATES:
            label = os.path.basename(template)
            if label == "tokenizer_config.json":
                label = os.path.basename(os.path.dirname(template)) + "/" + label
            matched = total = both_failed = 0
            for name in CONVERSATIONS:
                for gen in (True, False):
                    total += 1
                    ref_out, ref_err = reference(template, paths[name], gen)
                    out, err = ours[(template, name, gen)]
                    case = f"{label} x {name} (generation prompt {'on' if gen else 'off'})"
                    if ref_err is None and err is None and out == ref_out:
                        matched += 1
                    elif ref_err is not None and err is not None:
                        # the same failure: a template's raise_exception message must carry over
                        raised = ref_err.split(": ", 2)[-1] if ref_err.startswith(
                            "chat-template-ref:") else None
                        if raised and raised not in err:
                            problems.append(f"{case}: reference raised '{raised}', T2: {err}")
                        else:
                            matched += 1
                            both_failed += 1
                    elif err is not None:
                        problems.append(f"{case}: T2 failed: {err}")
                    elif ref_err is not None:
                        problems.append(f"{case}: the reference failed ({ref_err}), T2 did not")
                    else:
                        at = next((i for i, (a, b) in enumerate(zip(out, ref_out)) if a != b),
                                  min(len(out), len(ref_out)))
                        problems.append(f"{case}: differs at byte {at}: T2 "
                                        f"{out[max(0, at - 20):at + 30]!r} vs reference "
                                        f"{ref_out[max(0, at - 20):at + 30]!r}")
            rows.append((label, matched, total, both_failed))
    width = max(len(r[0]) for r in rows)
    print(f"{'template':<{width}}  matched / cases  (both failed: same error)")
    for label, matched, total, both in rows:
        print(f"{label:<{width}}  {matched:>7} / {total:<5}  ({both})")
    print(f"{len(CONVERSATIONS)} conversations x 2 (generation prompt on/off) per template")
    for p in problems:
        print("MISMATCH: " + p)
    refused = sorted({p.split(" x ")[0] for p in problems if "T2 failed" in p})
    if refused:
        print("templates T2 refused or failed on: " + ", ".join(refused))
    print("PASS" if not problems else f"FAIL: {len(problems)} mismatches")
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
