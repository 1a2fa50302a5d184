#!/usr/bin/python3
"""oversized.py - prompts far beyond the context do not disturb the others.

A scratch deployment on stories260K (router with the deployment's default heartbeats,
1000 ms and liveness 3, so a worker silent for 3 s is dropped; two 1-rank groups serving
generate and classify). Normal
load: ROUNDS x 16 greedy requests (`t2 submit --parallel 4 -n 32`), latency per request from
t2 submit's total_ms. It runs twice, alternating: alone, and while another client sends
20 prompts of 4 MB in a row (10 to generate, 10 to classify). Printed: p50 / p99 of the normal
requests with and without them, their ratio (target: p99 within 1.5x), what the oversized ones
got (each must be refused ERANGE) and whether any registration expired (none may: the
router's workers_expired stays 0 and no worker is removed for missed heartbeats).

    T2_BIN=build/bin /usr/bin/python3 bench/oversized.py [--rounds 3] [--check]

--check: exit 1 if a registration expired or an oversized prompt was not refused ERANGE
(timings are only printed: the machine is shared). tests/dist.cmake runs it so.
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from dist_util import Deployment, BIN, ENV  # noqa: E402

PROMPTS = ["Once upon a time", "The little dog", "Lily and Tom went to the park", "A big red ball",
           "One day, a girl named Sue", "The sun was shining", "Tim had a toy car",
           "There was a cat", "Mom said", "The bird flew", "Ben wanted to play",
           "It was a rainy day", "Sam found a box", "The old man", "Anna liked to sing",
           "A small frog"]
T2_ERANGE = -5


def normal_load(d):
    """16 greedy requests, 4 at a time: their total_ms."""
    args = ["-t", "0", "-n", "32", "--parallel", "4", "--service", "generate",
            "--timeout-ms", "60000"]
    for p in PROMPTS:
        args += ["-p", p]
    rc, out, err = d.submit(*args, timeout=300)
    if rc != 0 or len(out) != len(PROMPTS) or any(o["error"] for o in out):
        raise RuntimeError(f"normal load failed: exit {rc}: {err[-300:]}")
    return [o["total_ms"] for o in out]


def flood(d, path):
    """20 prompts of 4 MB in a row, 10 to each service, one at a time: background processes."""
    procs = []
    for svc in ("generate", "classify"):  # without --json: each answer would echo its 4 MB
        argv = [os.path.join(BIN, "t2"), "submit", "-c", d.cfg, "--service", svc,  # prompt
                "-n", "4", "--parallel", "1", "--timeout-ms", "60000", "-f", path]
        procs.append(subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True, env=ENV))
    return procs


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--check", action="store_true")
    a = ap.parse_args()
    d = Deployment("oversized", watchdog_s=600)
    ok = False
    try:
        d.write_config([("g1", 1, "merged"), ("g2", 1, "merged")], hb=1000, liveness=3)
        with open(d.cfg) as f:  # no factors or experts: base weights only
            cfg = f.read()
        cfg = re.sub(r'factors = "[^"]*"; *\n *classifier_expert = "cls";', "", cfg)
        with open(d.cfg, "w") as f:
            f.write(cfg.replace("stats_ms = 0;", "stats_ms = 0; max_msg = 4194304;"))
        big = d.path("big.txt")
        line = ("Once upon a time there was a little dog. " * 100000)[:4_000_000]
        with open(big, "w") as f:
            for _ in range(10):
                f.write(line + "\n")
        d.start_router()
        d.start_group("g1")
        d.start_group("g2")
        if not d.wait_ready(["g1", "g2"]):
            raise RuntimeError("groups not ready")
        normal_load(d)  # warm up
        alone, during, refused, other = [], [], 0, []
        for r in range(a.rounds):
            alone += normal_load(d)
            procs = flood(d, big)
            time.sleep(0.2)  # the flood is under way
            during += normal_load(d)
            for p in procs:
                out, err = p.communicate(timeout=300)
                # "t2 submit: [i] error CODE (NAME): message" on stderr, one per answer
                codes = re.findall(r"^t2 submit: \[\d+\] error (-?\d+)", err, re.M)
                refused += sum(int(c) == T2_ERANGE for c in codes)
                other += [l for l in err.splitlines() if l.startswith("t2 submit:")
                          and f"error {T2_ERANGE} " not in l][:5]
                other += [f"an answer, not an error: {l[:80]}" for l in out.splitlines() if l]
        rc = d.stop("router")
        with open(d.path("router.log")) as f:
            log = f.read()
        m = re.search(r"shutdown: .*workers_expired=(\d+)", log)
        expired = int(m.group(1)) if m else -1
        removed = log.count("missed heartbeats")
        p50a, p99a, p50b, p99b = pct(alone, .5), pct(alone, .99), pct(during, .5), pct(during, .99)
        print(f"normal requests: {len(alone)} alone, {len(during)} during 20 x 4 MB prompts "
              f"(x {a.rounds} rounds)")
        print(f"  {'':22s} {'p50 ms':>8s} {'p99 ms':>8s}")
        print(f"  {'alone':22s} {p50a:8.1f} {p99a:8.1f}")
        print(f"  {'with 4 MB prompts':22s} {p50b:8.1f} {p99b:8.1f}")
        print(f"  p99 ratio {p99b / p99a:.2f} (target <= 1.5), mean ratio "
              f"{statistics.mean(during) / statistics.mean(alone):.2f}")
        print(f"oversized prompts: {refused} refused ERANGE, {len(other)} other {other[:2]}")
        print(f"registrations expired: workers_expired={expired}, removals for missed "
              f"heartbeats: {removed}; router exit {rc}")
        ok = expired == 0 and removed == 0 and refused == 20 * a.rounds and not other
        if a.check and not ok:
            print("FAIL: a registration expired or an oversized prompt was not refused ERANGE")
    finally:
        d.cleanup(ok)
    return 0 if ok or not a.check else 1


if __name__ == "__main__":
    sys.exit(main())
