#!/usr/bin/python3
"""gateway_bench.py - streaming requests through t2-gateway vs the C client (`t2 submit
--parallel N`) on the same deployment (stories260K, one worker group, the dispatcher; the
scratch deployment of tests/gateway_util.py).

    T2_BIN=build/bin T2_ASSETS=../shared/assets /usr/bin/python3 bench/gateway_bench.py [N ...]
    (T2_BENCH_ROUNDS=R: rounds per concurrency, default 3)

For each concurrency N (default 16 32 64): N requests at once, greedy, MAX_TOKENS new tokens
each, distinct prompts, ROUNDS rounds alternating the two paths (latencies pooled, the median
batch wall time for throughput); the C client's per-request TTFT and total come from `t2 submit --json`
(ttft_ms, total_ms), the gateway's from N concurrent streaming HTTP clients (threads: the time
to the first content chunk, to data: [DONE]). Prints p50 / p99 of both and the throughput
(completion tokens / wall time of the batch: its slowest request's total, on both paths) ratio
gateway : C client, and the CPU seconds per batch of t2-gateway, of the Python HTTP clients and
of t2 submit. Run by hand (label bench); the numbers depend on the machine and whatever else
runs on it.
"""
import json
import os
import resource
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from gateway_util import GatewayDeployment, KEY_ALICE, BIN  # noqa: E402
from dist_util import ENV  # noqa: E402

MAX_TOKENS = 128
ROUNDS = int(os.environ.get("T2_BENCH_ROUNDS", "3"))
CPU = {"C client": 0.0, "gateway": 0.0, "HTTP clients": 0.0}  # CPU seconds, per concurrency
WORDS = ["dog", "cat", "ball", "tree", "park", "sun", "girl", "boy", "car", "bird", "cake", "rain"]


def prompts(n):
    return [f"Once upon a time a {WORDS[i % 12]} and a {WORDS[(i // 12) % 12]} went {i}"
            for i in range(n)]


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


def cpu_s(pid):
    """User + system CPU seconds of a process (all its threads) so far."""
    with open(f"/proc/{pid}/stat") as f:
        v = f.read().rsplit(")", 1)[1].split()
    return (int(v[11]) + int(v[12])) / os.sysconf("SC_CLK_TCK")


def self_cpu_s(who):
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


def c_client(d, ps):
    argv = [os.path.join(BIN, "t2"), "submit", "-c", d.cfg, "--json", "-t", "0", "-n",
            str(MAX_TOKENS), "--parallel", str(len(ps))]
    for p in ps:
        argv += ["-p", p]
    c0 = self_cpu_s(resource.RUSAGE_CHILDREN)
    r = subprocess.run(argv, capture_output=True, text=True, env=ENV, timeout=600)
    CPU["C client"] += self_cpu_s(resource.RUSAGE_CHILDREN) - c0
    out = [json.loads(x) for x in r.stdout.splitlines() if x.strip()]
    ok = [o for o in out if o["error"] is None]
    if len(ok) != len(ps):
        raise RuntimeError(f"t2 submit: {len(ok)} of {len(ps)} answered: {r.stderr[-500:]}")
    # the requests are submitted together: the batch's wall time is its slowest total (this
    # leaves out the process start and the connection handshake). Tokens: the same greedy
    # answers as the gateway's, whose usage counts them.
    return ([o["ttft_ms"] for o in ok], [o["total_ms"] for o in ok],
            max(o["total_ms"] for o in ok) / 1000)


def one_stream(port, prompt, res, i):
    body = json.dumps({"model": "t2-base", "prompt": prompt, "max_tokens": MAX_TOKENS,
                       "temperature": 0, "stream": True,
                       "stream_options": {"include_usage": True}}).encode()
    t0 = time.time()
    s = socket.create_connection(("127.0.0.1", port), timeout=600)
    s.sendall((f"POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY_ALICE}"
               f"\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
               "Connection: close\r\n\r\n").encode() + body)
    buf, first, tokens = b"", None, 0
    while True:
        d = s.recv(65536)
        if not d:
            break
        if first is None and b'"text":"' in d and b'"text":""' not in d:
            first = time.time()
        buf += d
    s.close()
    t1 = time.time()
    text = buf.decode("utf-8", "replace")
    for line in text.split("\n"):
        if line.startswith("data: {") and '"usage":{' in line:
            tokens = json.loads(line[6:])["usage"]["completion_tokens"]
    res[i] = ((first or t1) - t0, t1 - t0, tokens, "data: [DONE]" in text)


def gateway(d, ps):
    g0, p0 = cpu_s(d.procs["gateway"].pid), self_cpu_s(resource.RUSAGE_SELF)
    res = [None] * len(ps)
    th = [threading.Thread(target=one_stream, args=(d.http_port, p, res, i))
          for i, p in enumerate(ps)]
    t = time.time()
    for x in th:
        x.start()
    for x in th:
        x.join()
    # as for the C client: the batch's wall time is its slowest request's total (this leaves
    # out starting the client threads, which a loaded machine can stretch a lot)
    wall = max(r[1] for r in res if r) if all(res) else time.time() - t
    CPU["gateway"] += cpu_s(d.procs["gateway"].pid) - g0
    CPU["HTTP clients"] += self_cpu_s(resource.RUSAGE_SELF) - p0
    if not all(r and r[3] for r in res):
        raise RuntimeError("a gateway stream did not end with [DONE]")
    return ([r[0] * 1000 for r in res], [r[1] * 1000 for r in res], wall,
            sum(r[2] for r in res))


def main():
    ns = [int(a) for a in sys.argv[1:]] or [16, 32, 64]
    d = GatewayDeployment("gateway_bench", watchdog_s=1200)
    ok = False
    try:
        d.setup(capacity=16)
        # warm up both paths
        c_client(d, prompts(4))
        gateway(d, prompts(4))
        print(f"{'N':>3} {'path':8} {'ttft p50':>9} {'ttft p99':>9} {'total p50':>10} "
              f"{'total p99':>10} {'tok/s':>8}")
        for n in ns:
            ps = prompts(n)
            c_t, c_tot, c_walls, g_t, g_tot, g_walls = [], [], [], [], [], []
            for k in CPU:
                CPU[k] = 0.0
            for _ in range(ROUNDS):  # alternated, so that load from elsewhere hits both
                gt, gtot, gwall, toks = gateway(d, ps)
                ct, ctot, cwall = c_client(d, ps)
                g_t += gt
                g_tot += gtot
                g_walls.append(gwall)
                c_t += ct
                c_tot += ctot
                c_walls.append(cwall)
            cwall, gwall = pct(c_walls, 50), pct(g_walls, 50)
            for name, t, tot, wall in (("C client", c_t, c_tot, cwall),
                                       ("gateway", g_t, g_tot, gwall)):
                print(f"{n:>3} {name:8} {pct(t, 50):9.1f} {pct(t, 99):9.1f} {pct(tot, 50):10.1f} "
                      f"{pct(tot, 99):10.1f} {toks / wall:8.1f}")
            print(f"{n:>3} throughput gateway / C client = {cwall / gwall:.2f}  "
                  f"({toks} tokens per batch; median wall {gwall:.2f} s vs {cwall:.2f} s, "
                  f"{ROUNDS} rounds)")
            print(f"{n:>3} CPU per batch: t2-gateway {CPU['gateway'] / ROUNDS:.3f} s, the python "
                  f"HTTP clients {CPU['HTTP clients'] / ROUNDS:.3f} s, t2 submit "
                  f"{CPU['C client'] / ROUNDS:.3f} s", flush=True)
        ok = True
    finally:
        d.cleanup(ok)


if __name__ == "__main__":
    main()
