#!/usr/bin/python3
"""serve.py - serving benchmark of the whole system (router, dispatcher, worker groups).

For each layout (GROUPSxRANKS: 1x1, 1x2, 2x1) and apply mode (merged, factored) it starts a
scratch deployment on a model (default stories260K from ../shared/assets), then for 1, 2, 4,
8, 16 concurrent clients sends 4 x clients greedy requests (`t2 submit --parallel N`, a mixture
of two random experts, NEW new tokens each) and reports generated tokens/s over the wall time
and time to first token (p50, p99, measured by the client). The baseline is `t2 run` on the
same model, mixture and apply mode with one thread (the groups run one thread per rank): its
generation tok/s and prompt time, next to the 1-client numbers (overhead = the system's
per-request latency over t2 run's).

    T2_BIN=build/bin /usr/bin/python3 bench/serve.py [--new 64] [--clients 1,2,4,8,16]
        [--layouts 1x1,1x2,2x1] [--modes merged,factored] [--csv serve.csv] [--model M -z TOK]

A bigger model with random weights (the numbers then measure compute, not per-token overhead):
    build/bin/t2 init -o /tmp/m25.gguf --dim 512 --hidden 1376 --layers 8 --heads 8 --vocab 512 \
        --seq-len 512 -z ../shared/assets/models/tok512.bin
    T2_BIN=build/bin /usr/bin/python3 bench/serve.py --model /tmp/m25.gguf

Prints a table; --csv writes one row per (layout, mode, clients). Run on an idle machine: with
2 cores, layouts with 2 ranks share the cores with the router, dispatcher and client.
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
import dist_util  # noqa: E402
from dist_util import Deployment  # noqa: E402

PROMPTS = ["Once upon a time", "The little dog", "Lily and Tom went to the park", "A big red ball",
           "One day, a girl named Sue", "The sun was shining", "Tim had a toy car",
           "There was a cat", "Mom said", "The bird flew", "Ben wanted to play",
           "It was a rainy day", "Sam found a box", "The old man", "Anna liked to sing",
           "A small frog"]
MIX = "rand1=0.6,rand2=0.4"


def pct(v, p):
    if not v:
        return float("nan")
    v = sorted(v)
    k = min(len(v) - 1, max(0, int(round(p / 100 * (len(v) - 1)))))
    return v[k]


def baseline(d, new, mode):
    """t2 run with the mixture, one thread: (generation tok/s, prompt ms) averaged over prompts."""
    gen, prm = [], []
    for p in PROMPTS[:4]:
        argv = [os.path.join(dist_util.BIN, "t2"), "run", "-m", dist_util.MODEL] + \
               (["-z", dist_util.TOKENIZER] if dist_util.TOKENIZER else []) + ["-t", "0", "-n", str(len(p.split()) + new + 8), "-p", p,
                "-j", "1", "--factors", d.factors, "--mix", MIX, "--apply", mode]
        r = subprocess.run(argv, capture_output=True, text=True, env=dist_util.ENV)
        m = re.search(r"prompt: (\d+) tokens in ([\d.]+) s.*generation: (\d+) tokens in ([\d.]+) s",
                      r.stderr)
        if m:
            prm.append(float(m.group(2)) * 1000)
            gen.append(int(m.group(3)) / max(float(m.group(4)), 1e-9))
    return statistics.mean(gen), statistics.mean(prm)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--new", type=int, default=64)
    ap.add_argument("--clients", default="1,2,4,8,16")
    ap.add_argument("--layouts", default="1x1,1x2,2x1")
    ap.add_argument("--modes", default="merged,factored")
    ap.add_argument("--csv")
    ap.add_argument("--model")
    ap.add_argument("-z", "--tokenizer")
    a = ap.parse_args()
    if a.model:
        dist_util.MODEL = a.model
        dist_util.TOKENIZER = a.tokenizer or ""
    clients = [int(x) for x in a.clients.split(",")]
    rows = []
    d0 = Deployment("bench_serve_files", watchdog_s=3600)
    d0.make_files()
    base = {m: baseline(d0, a.new, m) for m in a.modes.split(",")}
    print(f"model {os.path.basename(dist_util.MODEL)}, {a.new} new tokens per request, mixture {MIX}")
    for m, (g, p) in base.items():
        print(f"t2 run ({m}, 1 thread): generation {g:.0f} tok/s, prompt {p:.2f} ms")
    print(f"{'layout':>6} {'apply':>8} {'clients':>7} {'requests':>8} {'tok/s':>8} "
          f"{'ttft p50':>9} {'ttft p99':>9} {'req ms p50':>10} {'vs t2 run':>9}")
    try:
        for layout in a.layouts.split(","):
            n_groups, ranks = (int(x) for x in layout.split("x"))
            for mode in a.modes.split(","):
                d = Deployment("bench_serve", watchdog_s=3600)
                d.factors = d0.factors
                os.symlink(d0.path("experts"), d.path("experts"))
                groups = [(f"g{i}", ranks, mode) for i in range(n_groups)]
                d.write_config(groups, capacity=16, hb=500, worker_log="warn")
                d.start_router()
                for g in groups:
                    d.start_group(g[0])
                d.start_dispatcher()
                for g in groups:
                    d.head_pid(g[0])
                time.sleep(0.5)
                d.submit("-t", "0", "-n", "8", "--adapt", "mix:" + MIX, PROMPTS[0])  # warm up
                for n in clients:
                    ps = [PROMPTS[i % len(PROMPTS)] for i in range(4 * n)]
                    args = ["-t", "0", "-n", str(a.new), "--parallel", str(n), "--adapt", "mix:" + MIX]
                    for p in ps:
                        args += ["-p", p]
                    t0 = time.time()
                    rc, out, err = d.submit(*args, timeout=600)
                    wall = time.time() - t0
                    ok = [o for o in out if o["error"] is None]
                    if rc != 0 or len(ok) != len(ps):
                        print(f"{layout} {mode} {n}: {len(ok)} of {len(ps)} answered: {err[-300:]}")
                    toks = sum(o["completion_tokens"] for o in ok)
                    ttft = [o["ttft_ms"] for o in ok if o["ttft_ms"] is not None]
                    lat = [o["total_ms"] for o in ok]
                    tps = toks / wall
                    ratio = tps / base[mode][0]
                    rows.append(dict(layout=layout, apply=mode, clients=n, requests=len(ok),
                                     tokens=toks, wall_s=round(wall, 3), tok_s=round(tps, 1),
                                     ttft_p50_ms=pct(ttft, 50), ttft_p99_ms=pct(ttft, 99),
                                     latency_p50_ms=pct(lat, 50),
                                     t2run_tok_s=round(base[mode][0], 1),
                                     t2run_prompt_ms=round(base[mode][1], 3)))
                    print(f"{layout:>6} {mode:>8} {n:>7} {len(ok):>8} {tps:>8.0f} "
                          f"{pct(ttft, 50):>9.1f} {pct(ttft, 99):>9.1f} {pct(lat, 50):>10.1f} "
                          f"{ratio:>8.2f}x", flush=True)
                for name in list(d.procs):
                    d.stop(name)
                d.cleanup(True)
    finally:
        d0.cleanup(True)
    if a.csv:
        with open(a.csv, "w") as f:
            f.write(",".join(rows[0].keys()) + "\n")
            for r in rows:
                f.write(",".join(str(v) for v in r.values()) + "\n")
        print(f"wrote {a.csv}")


if __name__ == "__main__":
    main()
