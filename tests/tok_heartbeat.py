#!/usr/bin/python3
"""tok_heartbeat.py - a long tokenization never holds up the worker head's heartbeats.

A random-weight llama model with Llama 3's real vocabulary (t2 init -z tokenizer.json) and a
context of 16,384 tokens, so a prompt of up to 2 MB passes the cheap size check (context x
the longest piece, 128 bytes) and must be tokenized. The router heartbeats every 100 ms with
liveness 3: a head silent for 0.3 s loses its registration. Two clients send 4 prompts of 1 MB
of random letters (one "word": each takes ~0.5 s or more to tokenize, ~540,000 tokens, so each
is refused ERANGE after tokenizing) while a third keeps sending short greedy requests.

Checked: no registration expires (router: no "missed heartbeats", workers_expired=0 at
shutdown), every short request completes, some of them while the long ones are being
tokenized, and every long one gets its clear ERANGE. Then two long prompts cancelled while
tokenized (one on the thread, one queued for it) and a group stopped while tokenizing: the
group goes on serving, and exits 0. With the prompt encoded on the head's own
loop (before the tokenizer thread) the registration expires at the first long prompt.
Exits 77 without the model vocabulary or mpirun.
"""
import os
import random
import re
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dist_util import ASSETS, Checks, Deployment, T2_ERANGE  # noqa: E402

T2_ETIMEOUT, T2_ECANCELLED = -10, -12

VOCAB = os.path.join(ASSETS, "tokenizers", "llama3", "tokenizer.json")
N_LONG, LONG_BYTES = 4, 1_000_000


def main():
    if not os.path.exists(VOCAB):
        print(f"SKIP: {VOCAB} not found (set T2_ASSETS)")
        return 77
    d = Deployment("tokhb", watchdog_s=120)
    check = Checks("tok_heartbeat")
    try:
        model = d.path("m.gguf")
        d.run("t2", "init", "-o", model, "--dim", "64", "--hidden", "128", "--layers", "2",
              "--heads", "4", "--vocab", "128256", "--seq-len", "16384", "--type", "f16",
              "-z", VOCAB, "--seed", "1")
        d.write_config([("g1", 1, "merged")], hb=100, liveness=3, capacity=2,
                       extra_worker="threads = 1;")
        with open(d.cfg) as f:
            cfg = f.read()
        cfg = re.sub(r'model = \{[^}]*\};', f'model = {{ path = "{model}"; context = 16384; }};', cfg)
        with open(d.cfg, "w") as f:
            f.write(cfg)
        rng = random.Random(1)
        big = d.path("long.txt")
        with open(big, "w") as f:
            for _ in range(N_LONG // 2):
                f.write("".join(rng.choice("abcdefghijklmnopqrstuvwxyz")
                                for _ in range(LONG_BYTES)) + "\n")
        d.start_router()
        d.start_group("g1")
        if not check(d.wait_ready(["g1"], timeout=60), "the group is ready"):
            return check.done()
        rc, out, err = d.submit("-t", "0", "-n", "8", "-p", "Hello", service="generate")
        check(rc == 0 and out and not out[0]["error"], f"a first request: {err[-300:]}")

        # the short requests, one after another, until the long ones are answered
        done, short, errors = threading.Event(), [], []

        def short_client():
            while not done.is_set():
                t0 = time.time()
                rc, out, err = d.submit("-t", "0", "-n", "8", "-p", "Hello world",
                                        "--timeout-ms", "20000", service="generate")
                if rc != 0 or not out or out[0]["error"]:
                    errors.append((rc, out, err[-200:]))
                else:
                    short.append((t0, time.time()))

        th = threading.Thread(target=short_client, daemon=True)
        th.start()
        time.sleep(0.5)
        t_long = time.time()
        longs = [d.submit_bg("-n", "4", "--parallel", "1", "--timeout-ms", "30000", "-f", big,
                             service="generate") for _ in range(2)]
        answers = []
        try:
            for p in longs:
                rc, out, err = d.collect(p, timeout=60)
                answers += out
        except Exception as e:  # noqa: BLE001 - reported as a failed check
            check(False, f"the long prompts were answered within 60 s: {e!r}")
        finally:
            for p in longs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
        t_end = time.time()
        time.sleep(0.5)
        done.set()
        th.join(30)

        codes = [a["error"]["code"] if a.get("error") else 0 for a in answers]
        check(len(answers) == N_LONG and all(c == T2_ERANGE for c in codes),
              f"each long prompt refused ERANGE after tokenizing: {codes}")
        check(not errors, f"every short request completed: {errors[:2]}")
        during = [s for s in short if s[0] >= t_long and s[1] <= t_end]
        check(len(during) >= 2, f"short requests completed while the long ones were tokenized: "
              f"{len(during)} in {t_end - t_long:.1f} s")
        print(f"long prompts answered in {t_end - t_long:.1f} s; short requests: {len(short)} "
              f"({len(during)} during the long ones)")

        if check.failed:  # the head lost its registration: the rest would only wait
            return finish(d, check)
        # cancelled while tokenizing: both long prompts time out (the router cancels them), one
        # on the tokenizer thread, one still queued for it; the group goes on serving
        rc, out, err = d.submit("-n", "4", "--parallel", "2", "--timeout-ms", "300", "-f", big,
                                timeout=60, service="generate")
        codes = [o["error"]["code"] if o.get("error") else 0 for o in out]
        check(len(out) == 2 and all(c in (T2_ETIMEOUT, T2_ECANCELLED) for c in codes),
              f"long prompts cancelled while tokenized: {codes} {err[-200:]}")
        rc, out, err = d.submit("-t", "0", "-n", "8", "-p", "Hello", service="generate")
        check(rc == 0 and out and not out[0]["error"], f"served after the cancels: {err[-300:]}")
        # stopped while tokenizing: the group exits cleanly (SIGTERM, not killed)
        p = d.submit_bg("-n", "4", "--timeout-ms", "30000", "-f", big, service="generate")
        time.sleep(1.0)
        check(d.stop("g1", timeout=30) == 0, "the group exits 0 when stopped while tokenizing")
        p.kill()
        p.wait()
        return finish(d, check)
    finally:
        d.cleanup(check.failed == 0 and not d.procs)


def finish(d, check):
    """The router's count of expired registrations, then stop everything."""
    d.stop("g1")
    d.stop("router")
    with open(d.path("router.log")) as f:
        log = f.read()
    m = re.search(r"shutdown: .*workers_expired=(\d+)", log)
    check(m and m.group(1) == "0", f"no registration expired: "
          f"{m.group(0) if m else 'no shutdown line'}")
    check(log.count("missed heartbeats") == 0, "no worker removed for missed heartbeats")
    return check.done()


if __name__ == "__main__":
    sys.exit(main())
