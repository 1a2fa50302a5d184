#!/usr/bin/python3
"""prefill_heartbeat.py - a long prompt chunk never holds up the worker head's heartbeats.

A random-weight llama model of 48 thin layers (t2 init, stories260K's 512-token vocabulary)
and worker.batch = 4096, so a prompt of ~2,500 tokens runs as one chunk of several seconds on
the head, longer than the router's liveness window (heartbeat 100 ms x 5). The head answers
heartbeats between the layers of a chunk (wk_stage's layer hook), so the group keeps its
registration: both long prompts are answered, no registration expires, and a short request
sent meanwhile is served after them. Before the hook, the router dropped the group in the
middle of the first chunk and requeued the job, again and again.
Exits 77 without mpirun or the vocabulary, or when the machine prefills too fast for the
chunk to outlast the window.
"""
import os
import random
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dist_util import ASSETS, Checks, Deployment  # noqa: E402

VOCAB = os.path.join(ASSETS, "models", "tok512.bin")
HB, LIVENESS = 100, 5
WORDS = ["the", "dog", "cat", "ran", "to", "a", "big", "park", "and", "sun", "was", "happy",
         "girl", "boy", "tree"]


def main():
    if not os.path.exists(VOCAB):
        print(f"SKIP: {VOCAB} not found (set T2_ASSETS)")
        return 77
    d = Deployment("prefillhb", watchdog_s=120)
    check = Checks("prefill_heartbeat")
    try:
        model = d.path("m.gguf")
        d.run("t2", "init", "-o", model, "--dim", "256", "--hidden", "512", "--layers", "48",
              "--heads", "4", "--vocab", "512", "--seq-len", "4096", "--type", "f32",
              "-z", VOCAB, "--seed", "1")
        d.write_config([("g1", 1, "merged")], hb=HB, liveness=LIVENESS, capacity=2,
                       extra_worker="batch = 4096;")
        with open(d.cfg) as f:
            cfg = f.read()
        cfg = re.sub(r'model = \{[^}]*\};', f'model = {{ path = "{model}"; context = 4096; }};', cfg)
        with open(d.cfg, "w") as f:
            f.write(cfg)
        rng = random.Random(1)
        prompt = d.path("long.txt")
        with open(prompt, "w") as f:  # two prompts of ~2,500 tokens (no common prefix)
            for _ in range(2):
                f.write(" ".join(rng.choice(WORDS) for _ in range(1400)) + "\n")
        d.start_router()
        d.start_group("g1")
        if not check(d.wait_ready(["g1"], timeout=60), "the group is ready"):
            return check.done()
        t0 = time.time()
        longs = d.submit_bg("-t", "0", "-n", "4", "--parallel", "1", "--timeout-ms", "120000",
                            "-f", prompt, service="generate")
        time.sleep(0.5)
        rc, short, err = d.submit("-t", "0", "-n", "8", "-p", "Hello", "--timeout-ms", "120000",
                                  service="generate")
        check(rc == 0 and short and not short[0]["error"], f"a short request served: {err[-300:]}")
        rc, out, err = d.collect(longs, timeout=150)
        took = time.time() - t0
        errs = [o["error"] for o in out if o.get("error")]
        check(len(out) == 2 and not errs, f"both long prompts answered: {errs} {err[-300:]}")
        print(f"two prompts of ~2,500 tokens, one chunk each, answered in {took:.1f} s "
              f"(liveness window {HB * LIVENESS} ms)")
        d.stop("g1")
        d.stop("router")
        with open(d.path("router.log")) as f:
            log = f.read()
        m = re.search(r"shutdown: .*workers_expired=(\d+)", log)
        check(m and m.group(1) == "0",
              f"no registration expired: {m.group(0) if m else 'no shutdown line'}")
        check(log.count("missed heartbeats") == 0, "no worker removed for missed heartbeats")
        m = re.search(r"shutdown: .*requeues=(\d+)", log)
        check(m and m.group(1) == "0", f"no job requeued: {m.group(0) if m else 'no shutdown line'}")
        if not check.failed and took < 4 * HB * LIVENESS / 1000:
            print(f"SKIP: two chunks took only {took:.1f} s: too fast to outlast the window")
            return 77
        return check.done()
    finally:
        d.cleanup(check.failed == 0 and not d.procs)


if __name__ == "__main__":
    sys.exit(main())
