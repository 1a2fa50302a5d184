#!/usr/bin/python3
"""dist_bytes.py - text made of byte-fallback tokens comes back from a deployment exactly as
`t2 run` prints it.

tok512 has no piece for most accented letters, so "ü" is generated as two byte tokens <0xC3>
<0xBC>. Each one decodes to a single byte >= 0x80; `t2 run` keeps such bytes (they reassemble into
UTF-8) and drops only lone control bytes, and a worker group must do the same. stories260K itself
never writes them greedily, so the test first fine-tunes it for a few seconds on German text full
of umlauts (`t2 train`), then serves that model (router, one worker group, dispatcher) and checks:
  - the greedy reference from `t2 run` holds bytes of byte-fallback tokens (else: SKIP);
  - `t2 submit` (streamed, raw bytes) gives the same bytes, and so does the JSON answer (text and
    streamed chunks alike).
"""
import os
import random
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dist_util  # noqa: E402
from dist_util import BIN, ENV, TOKENIZER, Deployment, Checks, skip  # noqa: E402

PROMPT = "Die Tür"
N_NEW = 40
SENTENCES = ["Der Bär läuft über die grüne Brücke.", "Die Tür ist schön und groß.",
             "Jürgen öffnet die Tür für Käthe.", "Über dem Fluß fliegt ein Vögelchen.",
             "Müde Bären schlafen süß."]
# the two-byte letters above that tok512 has no piece for: the model must write them byte by byte
BYTE_LETTERS = "äöüßÄÖÜ"


def train_model(d):
    """stories260K fine-tuned on umlaut text; returns the GGUF path."""
    r = random.Random(1)
    text = "\n\n".join(" ".join(r.choice(SENTENCES) for _ in range(4)) for _ in range(300))
    with open(d.path("de.txt"), "w", encoding="utf-8") as f:
        f.write(text)
    out = d.path("de.gguf")
    d.run("t2", "train", "-f", d.path("de.txt"), "-o", out, "-m", dist_util.MODEL, "-z", TOKENIZER,
          "-n", "60", "-j", "1")
    return out


def submit_raw(d):
    """t2 submit with one prompt streams the raw bytes of the answer, then a newline."""
    r = subprocess.run([os.path.join(BIN, "t2"), "submit", "-c", d.cfg, "-q", "-t", "0", "-n",
                        str(N_NEW), "--adapt", "none", "-p", PROMPT], capture_output=True, env=ENV,
                       timeout=120)
    return r.returncode, r.stdout, r.stderr.decode("utf-8", "replace")


def reference_raw(d):
    """`t2 run`'s greedy answer as bytes (after the prompt, without the final newline)."""
    n = d.n_tokens(PROMPT) + N_NEW - 1
    r = subprocess.run([os.path.join(BIN, "t2"), "run", "-m", dist_util.MODEL, "-z", TOKENIZER,
                        "-t", "0", "-n", str(n), "-p", PROMPT, "-j", "1"], capture_output=True,
                       env=ENV, timeout=120)
    p = PROMPT.encode()
    if r.returncode != 0 or not r.stdout.startswith(p) or not r.stdout.endswith(b"\n"):
        raise RuntimeError(f"t2 run: exit {r.returncode}, printed {r.stdout!r}")
    return r.stdout[len(p):-1]


def serve_and_check(d, check, want):
    """One worker group serving the fine-tuned model: its answers against t2 run's bytes."""
    d.make_files()
    d.write_config([("g1", 1, "merged")])
    d.start_router()
    d.start_group("g1")
    d.start_dispatcher()
    check(d.wait_ready(["g1", "dispatcher"]), "processes ready")
    rc, got, err = submit_raw(d)
    check(rc == 0, f"t2 submit: exit {rc}: {err.strip()}")
    check(got == want + b"\n", f"streamed answer {got!r} differs from t2 run's {want!r}")
    rc, out, err = d.submit("-t", "0", "-n", str(N_NEW), "--adapt", "none", PROMPT)
    if check(rc == 0 and len(out) == 1 and out[0]["error"] is None, f"--json: {err}"):
        check(out[0]["text"].encode("utf-8") == want,
              f"JSON answer {out[0]['text']!r} differs from t2 run's {want!r}")
        check(out[0]["stream_ok"], "the streamed chunks differ from the result text")
    for name in ("dispatcher", "g1", "router"):
        rc = d.stop(name)
        check(rc == 0, f"{name}: exit code {rc} after SIGTERM")


def main():
    check = Checks("dist_bytes")
    d = Deployment("dist_bytes", watchdog_s=200)
    passed = False
    try:  # an exception fails the test with its traceback; the processes are killed either way
        dist_util.MODEL = train_model(d)  # every helper of dist_util now serves this model
        want = reference_raw(d)
        letters = [c for c in want.decode("utf-8", "replace") if c in BYTE_LETTERS]
        if not letters:
            passed = True  # nothing failed: the files go
            skip(f"the fine-tuned model's greedy answer {want!r} has no byte-fallback letter")
        print(f"t2 run: {want.decode('utf-8', 'replace')!r} ({len(letters)} letters written as "
              f"byte tokens)")
        serve_and_check(d, check, want)
        passed = check.failed == 0
    finally:
        d.cleanup(passed)
    return check.done()


if __name__ == "__main__":
    sys.exit(main())
