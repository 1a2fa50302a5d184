#!/usr/bin/python3
"""gateway_bench.py - streaming requests through t2-gateway against the C client (`t2 submit
--parallel N`) on the same deployment (stories260K, one worker group of capacity 16, the
dispatcher: the scratch deployment of tests/gateway_util.py).

    T2_BIN=build/bin T2_ASSETS=../shared/assets /usr/bin/python3 bench/gateway_bench.py \
        [--rounds R] [--requests M] [--tokens T] [--csv FILE] [N ...]

For each concurrency N (default 16 32 64), R rounds (default 7); a round runs each path once,
in alternating order (gateway first in even rounds, the C client first in odd ones), so that
load from elsewhere hits both alike. A path's run is a closed loop: M requests (default 128),
N in flight, a new one sent as soon as one ends; greedy, T new tokens each (default 256),
distinct prompts. The gateway's load generator is one thread on non-blocking sockets
(selectors): streaming POST /v1/completions with usage, "Connection: close".

Per N it prints, per path: time to first token and total latency (p50 / p99 over all rounds'
requests), throughput (completion tokens / wall time of the run: its first request sent to
its last answer, on both paths; the median over rounds); then the ratio gateway : C client of
each round's throughputs (median, min, max, interquartile range), and CPU milliseconds per
1,000 tokens of t2-gateway, of the load generator, and of t2 submit (its whole process: start,
connection, answers), with their ratio: unlike the wall time, CPU time hardly depends on
what else runs on the machine. The gateway's answers are checked against t2 submit's (the
same text for the same prompt). FILE (default gateway_bench.csv) gets one row per N and
path; FILE with "-rounds" before ".csv" one row per round and path.

Run time with the defaults: 3.3 minutes on the shared 2-core machine under load (load average
14-20), less on an idle one; the first line printed says what it will do, the last the run
time. Run by hand (label bench); the numbers depend on the machine and on whatever else runs
on it.
"""
import argparse
import csv
import json
import os
import re
import resource
import selectors
import socket
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from gateway_util import GatewayDeployment, KEY_ALICE, BIN  # noqa: E402
from dist_util import ENV  # noqa: E402

WORDS = ["dog", "cat", "ball", "tree", "park", "sun", "girl", "boy", "car", "bird", "cake", "rain"]
USAGE = re.compile(rb'"completion_tokens":(\d+)')


def prompts(n, salt=0):
    return [f"Once upon a time a {WORDS[i % 12]} and a {WORDS[(i // 12) % 12]} went {i + salt}"
            for i in range(n)]


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


def proc_cpu_s(pid):
    """User + system CPU seconds of a process (all its threads) so far."""
    with open(f"/proc/{pid}/stat") as f:
        v = f.read().rsplit(")", 1)[1].split()
    return (int(v[11]) + int(v[12])) / os.sysconf("SC_CLK_TCK")


def rusage_s(who):
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


# ---- the C client -------------------------------------------------------------------------------

def c_client(d, ps, n, tokens):
    """t2 submit --parallel n over ps. Its answers come one JSON line each as they end (stdout
    is flushed per answer): the run's start is the earliest (arrival - total_ms), its end the
    last line's arrival, so the process's start and connection are left out of the wall time,
    as the gateway's load generator leaves out its own start. Returns a dict."""
    argv = [os.path.join(BIN, "t2"), "submit", "-c", d.cfg, "--json", "-q", "-t", "0", "-n",
            str(tokens), "--parallel", str(n)]
    for p in ps:
        argv += ["-p", p]
    c0 = rusage_s(resource.RUSAGE_CHILDREN)
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
    lines = []
    for line in proc.stdout:
        lines.append((time.monotonic(), line))
    err = proc.stderr.read()
    proc.wait(timeout=600)
    cpu = rusage_s(resource.RUSAGE_CHILDREN) - c0
    start, end, ttft, total, toks, texts = None, 0.0, [], [], 0, {}
    for t, line in lines:
        o = json.loads(line)
        if o["error"] is not None:
            raise RuntimeError(f"t2 submit: {o['error']}")
        s = t - o["total_ms"] / 1000
        start = s if start is None else min(start, s)
        end = max(end, t)
        ttft.append(o["ttft_ms"])
        total.append(o["total_ms"])
        toks += o["completion_tokens"]
        texts[o["prompt"]] = o["text"]
    if len(lines) != len(ps):
        raise RuntimeError(f"t2 submit: {len(lines)} of {len(ps)} answered: {err[-500:]}")
    return {"wall": end - start, "tokens": toks, "cpu": cpu, "cpu_gw": 0.0, "cpu_load": 0.0,
            "ttft": ttft, "total": total, "texts": texts}


# ---- the gateway: one thread, non-blocking sockets ----------------------------------------------

class Stream:
    __slots__ = ("prompt", "sock", "req", "t0", "t_first", "t_end", "parts")

    def __init__(self, port, prompt, tokens):
        body = json.dumps({"model": "t2-base", "prompt": prompt, "max_tokens": tokens,
                           "temperature": 0, "stream": True,
                           "stream_options": {"include_usage": True}}).encode()
        self.req = (f"POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                    f"Authorization: Bearer {KEY_ALICE}\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body
        self.prompt = prompt
        self.t0 = time.monotonic()
        self.t_first = None
        self.parts = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setblocking(False)
        self.sock.connect_ex(("127.0.0.1", port))


def gateway_loop(port, ps, n, tokens):
    """Closed loop: n streams open, the next one started as soon as one ends. Returns the
    finished streams and the wall time (the first sent to the last ended)."""
    sel = selectors.DefaultSelector()
    todo, done, live = list(reversed(ps)), [], 0

    def start():
        st = Stream(port, todo.pop(), tokens)
        sel.register(st.sock, selectors.EVENT_WRITE, st)

    t_start = time.monotonic()
    while todo and live < n:
        start()
        live += 1
    while live:
        for key, ev in sel.select(timeout=600):
            st = key.data
            if ev & selectors.EVENT_WRITE:  # connected: the request fits one send
                st.sock.send(st.req)
                sel.modify(st.sock, selectors.EVENT_READ, st)
                continue
            d = st.sock.recv(65536)
            if d:
                if st.t_first is None and b'"text":"' in d and b'"text":""' not in d:
                    st.t_first = time.monotonic()
                st.parts.append(d)
                continue
            st.t_end = time.monotonic()
            sel.unregister(st.sock)
            st.sock.close()
            done.append(st)
            live -= 1
            if todo:
                start()
                live += 1
    sel.close()
    return done, time.monotonic() - t_start


def sse_text(raw):
    """The streamed text and completion tokens of one HTTP response (chunked SSE)."""
    head, _, body = raw.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"gateway: {head[:200]!r} {body[:300]!r}")
    data = b""
    while body:  # chunked transfer coding
        size, _, rest = body.partition(b"\r\n")
        k = int(size.split(b";")[0], 16)
        if k == 0:
            break
        data += rest[:k]
        body = rest[k + 2:]
    text, toks, ended = [], None, False
    for line in data.split(b"\n"):
        if line == b"data: [DONE]":
            ended = True
        elif line.startswith(b"data: {"):
            o = json.loads(line[6:])
            if o.get("usage"):
                toks = o["usage"]["completion_tokens"]
            for c in o.get("choices", []):
                text.append(c.get("text", ""))
    if not ended or toks is None:
        raise RuntimeError(f"gateway: a stream without usage or [DONE]: {data[-300:]!r}")
    return "".join(text), toks


def gateway(d, ps, n, tokens):
    pid = d.procs["gateway"].pid
    g0, l0 = proc_cpu_s(pid), rusage_s(resource.RUSAGE_SELF)
    done, wall = gateway_loop(d.http_port, ps, n, tokens)
    cpu_gw, cpu_load = proc_cpu_s(pid) - g0, rusage_s(resource.RUSAGE_SELF) - l0
    texts, toks = {}, 0
    for st in done:  # checked after the CPU is taken
        texts[st.prompt], k = sse_text(b"".join(st.parts))
        toks += k
    return {"wall": wall, "tokens": toks, "cpu": cpu_gw + cpu_load, "cpu_gw": cpu_gw,
            "cpu_load": cpu_load, "texts": texts,
            "ttft": [((st.t_first or st.t_end) - st.t0) * 1000 for st in done],
            "total": [(st.t_end - st.t0) * 1000 for st in done]}


# ---- the run ------------------------------------------------------------------------------------

def check_same(g, c, n):
    for p, t in c["texts"].items():
        if g["texts"].get(p) != t:
            raise RuntimeError(f"N={n}: the gateway's answer to {p!r} differs from t2 submit's: "
                               f"{g['texts'].get(p)!r} vs {t!r}")


def per_1k(runs, key):
    return 1000 * sum(r[key] for r in runs) / sum(r["tokens"] for r in runs)


def summarize(n, gw, cl, out, rows):
    ratios = [g["tokens"] / g["wall"] / (c["tokens"] / c["wall"]) for g, c in zip(gw, cl)]
    q = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3
    cpu_g, cpu_l, cpu_c = per_1k(gw, "cpu_gw"), per_1k(gw, "cpu_load"), per_1k(cl, "cpu")
    for name, runs, cpu in (("C client", cl, cpu_c), ("gateway", gw, cpu_g + cpu_l)):
        t = [x for r in runs for x in r["ttft"]]
        tot = [x for r in runs for x in r["total"]]
        tput = statistics.median(r["tokens"] / r["wall"] for r in runs)
        print(f"{n:>3} {name:8} {pct(t, 50):9.1f} {pct(t, 99):9.1f} {pct(tot, 50):10.1f} "
              f"{pct(tot, 99):10.1f} {tput:9.0f} {1000 * cpu:13.2f}")
        rows.append([n, name, len(runs), runs[0]["tokens"], f"{pct(t, 50):.1f}",
                     f"{pct(t, 99):.1f}", f"{pct(tot, 50):.1f}", f"{pct(tot, 99):.1f}",
                     f"{tput:.1f}", f"{1000 * cpu:.3f}",
                     f"{1000 * cpu_g:.3f}" if name == "gateway" else "",
                     f"{1000 * cpu_l:.3f}" if name == "gateway" else ""])
    rows[-2] += [""] * 6
    rows[-1] += [f"{statistics.median(ratios):.3f}", f"{min(ratios):.3f}", f"{max(ratios):.3f}",
                 f"{q[0]:.3f}", f"{q[2]:.3f}", f"{(cpu_g + cpu_l) / cpu_c:.3f}"]
    print(f"{n:>3} throughput gateway / C client: median {statistics.median(ratios):.2f} "
          f"(min {min(ratios):.2f}, IQR {q[0]:.2f}-{q[2]:.2f}, max {max(ratios):.2f}; "
          f"{len(ratios)} rounds)")
    print(f"{n:>3} CPU ms per 1,000 tokens: t2-gateway {1000 * cpu_g:.2f} + load generator "
          f"{1000 * cpu_l:.2f} = {1000 * (cpu_g + cpu_l):.2f} vs t2 submit {1000 * cpu_c:.2f} "
          f"(ratio {(cpu_g + cpu_l) / cpu_c:.2f}; gateway alone {cpu_g / cpu_c:.2f})", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("n", nargs="*", type=int, default=[16, 32, 64])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--requests", type=int, default=128)
    ap.add_argument("--tokens", type=int, default=256)
    ap.add_argument("--csv", default="gateway_bench.csv")
    a = ap.parse_args()
    if a.rounds < 1 or a.requests < 1 or not 1 <= a.tokens <= 400 or min(a.n) < 1:
        ap.error("rounds, requests and N must be >= 1, tokens 1..400 (the model's context)")
    print(f"gateway_bench: N = {a.n}, {a.rounds} rounds x 2 paths x {a.requests} requests x "
          f"{a.tokens} tokens (stories260K, one group of capacity 16)", flush=True)
    t_run = time.monotonic()
    d = GatewayDeployment("gateway_bench", watchdog_s=3600)
    ok, rows, round_rows = False, [], []
    try:
        # liveness 2 s: on a loaded machine a process can miss 500 ms of heartbeats, and the
        # router then drops its requests (the bench measures throughput, not liveness)
        d.setup(capacity=16, liveness=20)
        c_client(d, prompts(8), 8, 16)  # warm up both paths
        gateway(d, prompts(8), 8, 16)
        print(f"{'N':>3} {'path':8} {'ttft p50':>9} {'ttft p99':>9} {'total p50':>10} "
              f"{'total p99':>10} {'tok/s':>9} {'CPU ms/1k tok':>13}")
        for n in a.n:
            gw, cl = [], []
            for r in range(a.rounds):
                ps = prompts(a.requests, salt=1000 * r)
                order = (gateway, c_client) if r % 2 == 0 else (c_client, gateway)
                res = {f: f(d, ps, n, a.tokens) for f in order}
                g, c = res[gateway], res[c_client]
                check_same(g, c, n)
                gw.append(g)
                cl.append(c)
                for name, x in (("gateway", g), ("C client", c)):
                    round_rows.append([n, r, name, x["tokens"], f"{x['wall']:.4f}",
                                       f"{x['tokens'] / x['wall']:.1f}", f"{x['cpu']:.4f}",
                                       f"{x['cpu_gw']:.4f}", f"{x['cpu_load']:.4f}"])
            summarize(n, gw, cl, a, rows)
        ok = True
    finally:
        d.cleanup(ok)
    with open(a.csv, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["n", "path", "rounds", "tokens_per_run", "ttft_p50_ms", "ttft_p99_ms",
                    "total_p50_ms", "total_p99_ms", "tok_per_s_median", "cpu_ms_per_1k_tokens",
                    "gateway_cpu_ms_per_1k", "loadgen_cpu_ms_per_1k", "ratio_median", "ratio_min",
                    "ratio_max", "ratio_q1", "ratio_q3", "cpu_ratio"])
        w.writerows(rows)
    rpath = a.csv[:-4] + "-rounds.csv" if a.csv.endswith(".csv") else a.csv + "-rounds"
    with open(rpath, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["n", "round", "path", "tokens", "wall_s", "tok_per_s", "cpu_s",
                    "gateway_cpu_s", "loadgen_cpu_s"])
        w.writerows(round_rows)
    print(f"wrote {a.csv} and {rpath}; run time {time.monotonic() - t_run:.0f} s")


if __name__ == "__main__":
    main()
