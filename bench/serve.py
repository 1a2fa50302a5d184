#!/usr/bin/python3
"""serve.py - serving benchmark of the whole system (router, dispatcher, worker groups).

Default (the ratios of issue 12): for each model (--models; default the bundled model
models/t2-base.gguf and a 25 M-parameter random model made with t2 init), one scratch
deployment (router, dispatcher, one group of one rank, one thread, merged, a mixture of two
random experts) and, in the same run, the in-process baselines:
  1 client   4 requests one after the other (`t2 submit --parallel 1`, greedy, NEW new tokens):
             the streamed generation rate (new tokens after the first over the time after the
             first) against `t2 run`'s generation tok/s (same prompt, mixture, one thread);
  8 clients  32 requests, 8 in flight (`t2 submit --parallel 8`): generated tokens over the
             wall time against t2-bench-genbatch (t2_generate_batch, as t2 eval runs it: the
             same 32 prompts, batch 8, one thread);
and time to first token p50 / p99 as the client measures it. Also tokens per CPU second: of
the deployment (router, dispatcher, worker group, client) against the baseline's generation
(t2-bench-genbatch's own CPU time; batch 1 for the 1-client row), which a loaded machine
disturbs much less than wall-clock rates (with more processes than cores, a deployment of
several processes also gets a larger share of the cores than one baseline process). Prints a
table with the ratios; --csv writes it.

    T2_BIN=build/bin /usr/bin/python3 bench/serve.py [--new 64] [--csv serve.csv]
        [--models bundled,m25] [--reps 3]

--sweep keeps the older sweep: layouts GROUPSxRANKS (1x1, 1x2, 2x1) x apply modes x 1, 2, 4,
8, 16 clients on one model (--model M -z TOK; default stories260K from ../shared/assets).

Run on an idle machine: with 2 cores, the router, dispatcher and client share the cores with
the group; on a loaded machine compare the ratios of one run, not the absolute numbers.
"""
import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
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


def sweep(a):
    """The older sweep (--sweep): layouts x apply modes x client counts on one model."""
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


TICK = os.sysconf("SC_CLK_TCK")


def cpu_s(pids):
    """User + system CPU seconds of the processes (0 for one that is gone)."""
    t = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            t += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return t / TICK


def child_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_t2(d, prompt, n_prompt, new):
    """t2 run with the mixture, merged, one thread, `new` new tokens: (generation tok/s,
    tokens, CPU seconds of the whole process)."""
    argv = [os.path.join(dist_util.BIN, "t2"), "run", "-m", dist_util.MODEL] + \
        (["-z", dist_util.TOKENIZER] if dist_util.TOKENIZER else []) + \
        ["-t", "0", "-n", str(n_prompt + new - 1), "-p", prompt, "-j", "1",
         "--factors", d.factors, "--mix", MIX, "--apply", "merged"]
    c0 = child_cpu()
    r = subprocess.run(argv, capture_output=True, text=True, errors="replace",
                       env=dist_util.ENV)
    m = re.search(r"generation: (\d+) tokens in ([\d.]+) s", r.stderr)
    if not m:
        raise RuntimeError(f"t2 run: {r.stderr[-300:]}")
    return int(m.group(1)) / max(float(m.group(2)), 1e-9), int(m.group(1)), child_cpu() - c0


def genbatch(d, prompts, new, batch, reps):
    """t2-bench-genbatch: in-process batched generation of the same prompts (its JSON: tok_s,
    and cpu_s, the CPU seconds of the generation alone)."""
    argv = [os.path.join(dist_util.BIN, "t2-bench-genbatch"), "-m", dist_util.MODEL] + \
        (["-z", dist_util.TOKENIZER] if dist_util.TOKENIZER else []) + \
        ["--factors", d.factors, "--experts", d.path("experts"), "--mix", MIX, "--new", str(new),
         "--batch", str(batch), "-j", "1", "--reps", str(reps)] + prompts
    r = subprocess.run(argv, capture_output=True, text=True, env=dist_util.ENV, check=True)
    return json.loads(r.stdout)


def clients_run(d, prompts, new, n, pids):
    """t2 submit --parallel n of the prompts: tok/s over the wall, the streamed rate (new
    tokens after the first over the time after the first, summed over requests), TTFTs, prompt
    tokens by prompt, and tokens per CPU second of the deployment's processes and the client."""
    args = ["-t", "0", "-n", str(new), "--parallel", str(n), "--adapt", "mix:" + MIX]
    for p in prompts:
        args += ["-p", p]
    c0, s0 = child_cpu(), cpu_s(pids)
    t0 = time.time()
    rc, out, err = d.submit(*args, timeout=900)
    wall = time.time() - t0
    cpu = child_cpu() - c0 + cpu_s(pids) - s0
    ok = [o for o in out if o["error"] is None]
    if rc != 0 or len(ok) != len(prompts):
        raise RuntimeError(f"{len(ok)} of {len(prompts)} answered: {err[-300:]}")
    toks = sum(o["completion_tokens"] for o in ok)
    after = [(o["completion_tokens"] - 1, o["total_ms"] - o["ttft_ms"]) for o in ok
             if o["ttft_ms"] is not None and o["completion_tokens"] > 1]
    n_after, ms_after = sum(x[0] for x in after), sum(x[1] for x in after)
    stream = n_after / ms_after * 1000 if ms_after >= 5 else float("nan")
    return dict(wall_tok_s=toks / wall, stream_tok_s=stream, tok_cpu=toks / max(cpu, 1e-3),
                ttft=[o["ttft_ms"] for o in ok if o["ttft_ms"] is not None],
                n_prompt={o["prompt"]: o["prompt_tokens"] for o in ok})


def make_m25(path):
    if not os.path.exists(path):
        tok = os.path.join(dist_util.ASSETS, "models", "tok512.bin")
        subprocess.run([os.path.join(dist_util.BIN, "t2"), "init", "-o", path, "--dim", "512",
                        "--hidden", "1376", "--layers", "8", "--heads", "8", "--vocab", "512",
                        "--seq-len", "512", "-z", tok], check=True, capture_output=True)
    return path


def ratios_one(name, model, a, rows):
    """One model: the deployment and its baselines, rows appended."""
    dist_util.MODEL, dist_util.TOKENIZER = model, ""
    d = Deployment("bench_serve", watchdog_s=3600)
    try:
        d.make_files()
        d.write_config([("g0", 1, "merged")], capacity=8, hb=500, worker_log="warn",
                       extra_worker=a.worker_extra)
        d.start_router()
        d.start_group("g0")
        d.start_dispatcher()
        d.head_pid("g0")
        time.sleep(0.5)
        d.submit("-t", "0", "-n", "8", "--adapt", "mix:" + MIX, PROMPTS[0])  # warm up
        many = [PROMPTS[i % len(PROMPTS)] for i in range(32)]
        pids = [p.pid for p in d.procs.values()] + [d.head_pid("g0")]
        for rep in range(a.reps):
            one = clients_run(d, PROMPTS[:4], a.new, 1, pids)
            base = [run_t2(d, p, one["n_prompt"][p], a.new) for p in PROMPTS[:4]]
            base1 = statistics.mean(b[0] for b in base)
            g1 = genbatch(d, PROMPTS[:4], a.new, 1, 1)  # t2 run's path, timed by CPU
            base1_cpu = g1["tokens"] / g1["cpu_s"]
            gb = genbatch(d, many, a.new, 8, 1)
            eight = clients_run(d, many, a.new, 8, pids)
            for clients, r1, ref, ref_cpu, what in (
                    (1, one, base1, base1_cpu, "t2 run"),
                    (8, eight, gb["tok_s"], gb["tokens"] / gb["cpu_s"], "genbatch 8")):
                tps = r1["stream_tok_s"] if clients == 1 else r1["wall_tok_s"]
                rows.append(dict(model=name, rep=rep, clients=clients, tok_s=round(tps, 1),
                                 baseline=what, baseline_tok_s=round(ref, 1),
                                 ratio=round(tps / ref, 3),
                                 tok_per_cpu_s=round(r1["tok_cpu"], 1),
                                 baseline_tok_per_cpu_s=round(ref_cpu, 1),
                                 cpu_ratio=round(r1["tok_cpu"] / ref_cpu, 3),
                                 ttft_p50_ms=round(pct(r1["ttft"], 50), 2),
                                 ttft_p99_ms=round(pct(r1["ttft"], 99), 2),
                                 wall_tok_s=round(r1["wall_tok_s"], 1)))
                r = rows[-1]
                print(f"{name:>8} {rep:>3} {clients:>7} {r['tok_s']:>9.0f} {what:>11} "
                      f"{r['baseline_tok_s']:>9.0f} {r['ratio']:>6.2f}x "
                      f"{r['tok_per_cpu_s']:>9.0f} {r['baseline_tok_per_cpu_s']:>9.0f} "
                      f"{r['cpu_ratio']:>6.2f}x {r['ttft_p50_ms']:>9.1f} "
                      f"{r['ttft_p99_ms']:>9.1f} {r['wall_tok_s']:>9.0f}", flush=True)
        for n in list(d.procs):
            d.stop(n)
        d.cleanup(True)
    except BaseException:
        d.kill_all()
        d.cleanup(False)
        raise


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--new", type=int, default=64)
    ap.add_argument("--csv")
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--models", default="bundled,m25")
    ap.add_argument("--worker-extra", default="", help="more worker settings (t2.cfg syntax)")
    ap.add_argument("--sweep", action="store_true")
    ap.add_argument("--clients", default="1,2,4,8,16")
    ap.add_argument("--layouts", default="1x1,1x2,2x1")
    ap.add_argument("--modes", default="merged,factored")
    ap.add_argument("--model")
    ap.add_argument("-z", "--tokenizer")
    a = ap.parse_args()
    if a.sweep:
        return sweep(a)
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    paths = {"bundled": os.path.join(root, "models", "t2-base.gguf"),
             "m25": make_m25(os.path.join(tempfile.gettempdir(), "t2-bench-m25.gguf"))}
    rows = []
    print(f"{a.new} new tokens per request, greedy, mixture {MIX}, 1 group x 1 rank, 1 thread; "
          "1 client: streamed generation rate vs t2 run; 8 clients: tokens/wall vs in-process "
          "batch 8")
    print(f"{'model':>8} {'rep':>3} {'clients':>7} {'tok/s':>9} {'baseline':>11} {'base tok/s':>9} "
          f"{'ratio':>7} {'tok/CPU-s':>9} {'base t/CPU':>9} {'ratio':>7} {'ttft p50':>9} "
          f"{'ttft p99':>9} {'wall tok/s':>9}")
    for name in a.models.split(","):
        ratios_one(name, paths[name], a, rows)
    if a.csv and rows:
        with open(a.csv, "w") as f:
            f.write(",".join(rows[0].keys()) + "\n")
            for r in rows:
                f.write(",".join(str(v) for v in r.values()) + "\n")
        print(f"wrote {a.csv}")


if __name__ == "__main__":
    main()
