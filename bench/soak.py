#!/usr/bin/python3
"""soak.py - N minutes of mixed load on a scratch deployment while processes are killed and
stopped on a schedule; every request accounted for.

The deployment (tests/dist_util.py, stories260K): a router, a dispatcher and two worker
groups (g2: 2 ranks, g1: 1 rank; merged), heartbeats 100 ms x liveness 5, the groups'
watchdog at 2 s, the router's progress deadline at 10 s. A supervisor here restarts whatever
exits (as systemd's Restart=on-failure would).

Everything speaks CURVE (the deployment's keys). Load: CLIENTS raw ZeroMQ clients written
here from proto/t2.proto (with the client key; they resubmit their
requests in flight when the router restarts or goes silent, as router/README.md asks), each
keeping INFLIGHT requests going: greedy generations with an explicit mixture or base weights
("generate"), two-pass requests through the dispatcher ("adaptive"), classifications
("classify").

Chaos, every EVERY seconds, one of: SIGKILL a rank of a group; SIGSTOP a rank for 20 s
(rank 1: the group's watchdog aborts it; rank 0: the router drops it, it comes back on
SIGCONT); SIGKILL the dispatcher; SIGSTOP it for 5 s; SIGKILL the router; SIGSTOP it 3 s.

Counted per kind: sent (distinct request ids), correct (generations byte-identical to
`t2 run` with the Result's mixture; a classification equal to the first answer for its
prompt), wrong, error (a final Error; listed by code and message), lost (no final reply
within 120 s of the last submission) and duplicated (a second final reply for one id).
Prints a table; exits 1 if anything was wrong, lost or duplicated.

    T2_BIN=build/bin /usr/bin/python3 bench/soak.py --minutes 20 [--every 10] [--seed 1]
"""
import argparse
import collections
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
try:
    import zmq
    import google.protobuf  # noqa: F401
except ImportError as e:
    print(f"SKIP: {e} (install python3-zmq and python3-protobuf)")
    sys.exit(77)
if not shutil.which("protoc"):
    print("SKIP: protoc not found (install protobuf-compiler)")
    sys.exit(77)
from dist_util import Deployment, curve_client  # noqa: E402
from dist_watchdog import rank_pid  # noqa: E402

HB_MS, LIVENESS = 100, 5
PROMPTS = ["Once upon a time", "The little dog", "Lily and Tom went to the park", "A big red ball",
           "One day, a girl named Sue", "The sun was shining", "Tim had a toy car", "There was a cat"]
ERR_NAMES = {-9: "EPROTO", -8: "ENOTFOUND", -11: "EBUSY", -10: "ETIMEOUT", -12: "ECANCELLED",
             -5: "ERANGE", -4: "EINVAL", -3: "EINTERNAL", -6: "EUNSUPPORTED"}


class Req:
    def __init__(self, rid, kind, msg, meta):
        self.rid, self.kind, self.msg, self.meta = rid, kind, msg, meta
        self.finals = 0
        self.sent_at = time.monotonic()


class Client:
    """A DEALER socket: heartbeats, resubmission after a router restart or silence."""

    def __init__(self, ctx, endpoint, pb, stats, keys):
        self.ctx, self.endpoint, self.pb, self.stats, self.keys = ctx, endpoint, pb, stats, keys
        self.sock = None
        self.inflight = {}  # rid -> Req
        self.epoch = None
        self.connect()

    def connect(self):
        if self.sock is not None:
            self.sock.close(0)
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        curve_client(self.sock, self.keys)
        self.sock.connect(self.endpoint)
        self.last_heard = time.monotonic()
        self.next_hb = 0.0
        self.epoch = None  # requests are resent when the router's first epoch arrives

    def send(self, m):
        m.version = 1
        try:
            self.sock.send(m.SerializeToString(), zmq.NOBLOCK)
        except zmq.Again:
            pass

    def submit(self, req):
        self.inflight[req.rid] = req
        if self.epoch is not None:
            self.send(req.msg)

    def resubmit_all(self):
        for r in self.inflight.values():
            self.send(r.msg)
            self.stats["resubmits"] += 1

    def housekeeping(self):
        now = time.monotonic()
        if now >= self.next_hb:
            hb = self.pb.Msg()
            hb.heartbeat.role = self.pb.ROLE_CLIENT
            self.send(hb)
            self.next_hb = now + HB_MS / 1000
        if now - self.last_heard > HB_MS * LIVENESS / 1000:
            self.stats["reconnects"] += 1
            self.connect()

    def on_message(self, data, finish):
        self.last_heard = time.monotonic()
        m = self.pb.Msg()
        m.ParseFromString(data)
        kind = m.WhichOneof("body")
        if kind == "heartbeat":
            if m.heartbeat.HasField("epoch") and m.heartbeat.epoch != self.epoch:
                self.epoch = m.heartbeat.epoch
                self.resubmit_all()  # a new router (or a new connection) knows none of them
            return
        if kind not in ("result", "error"):
            return
        body = m.result if kind == "result" else m.error
        r = self.inflight.pop(body.request_id, None) or finish.get("done", {}).get(body.request_id)
        if r is None:
            return
        r.finals += 1
        if r.finals == 1:
            finish["done"][r.rid] = r
            finish["cb"](r, kind, body)
        else:
            self.stats["duplicated"][r.kind] += 1


def make_request(pb, rid, rng):
    kind = rng.choice(["generate", "generate", "adaptive", "classify"])
    prompt = rng.choice(PROMPTS)
    m = pb.Msg()
    q = m.request
    q.request_id = rid
    q.timeout_ms = 60000
    q.task.prompt = prompt.encode()
    n = rng.choice([16, 32])
    meta = {"prompt": prompt, "n": n}
    if kind == "classify":
        q.service = "classify"
        q.task.kind = pb.KIND_CLASSIFY
        return Req(rid, kind, m, meta)
    q.task.sampling.temperature = 0.0
    q.task.sampling.max_tokens = n
    if kind == "adaptive":
        q.service = "generate-adaptive"
        q.task.adaptation.mode = pb.ADAPT_PROMPT
    else:
        q.service = "generate"
        a = rng.choice([None, 0.25, 0.75])
        if a is not None:
            q.task.adaptation.mode = pb.ADAPT_MIXTURE
            for e, al in (("rand1", a), ("rand2", 1 - a)):
                x = q.task.adaptation.mixture.experts.add()
                x.expert, x.alpha = e, al
    return Req(rid, kind, m, meta)


class Chaos:
    """The supervisor and the schedule of kills and stops."""

    def __init__(self, d, rng, every):
        self.d, self.rng, self.every = d, rng, every
        self.next_at = time.monotonic() + every
        self.conts = []  # (time, pid)
        self.restart_at = {}
        self.log = collections.Counter()

    def start(self, name):
        if name == "router":
            self.d.start_router()
        elif name == "dispatcher":
            self.d.start_dispatcher()
        else:
            self.d.start_group(name)

    def supervise(self):
        now = time.monotonic()
        for t, pid in [c for c in self.conts if c[0] <= now]:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
            self.conts.remove((t, pid))
        for name in ("router", "dispatcher", "g2", "g1"):
            p = self.d.procs.get(name)
            if p is not None and p.poll() is None:
                continue
            if name not in self.restart_at:
                self.restart_at[name] = now + 1.0
            elif now >= self.restart_at[name]:
                del self.restart_at[name]
                self.start(name)
                self.log[f"restart {name}"] += 1
        if now >= self.next_at:
            self.next_at = now + self.every
            self.strike()

    def pid_of(self, name):
        p = self.d.procs.get(name)
        return p.pid if p is not None and p.poll() is None else None

    def strike(self):
        what = self.rng.choice(["kill rank", "stop rank", "kill dispatcher", "stop dispatcher",
                                "kill router", "stop router"])
        if what.endswith("rank"):
            group = self.rng.choice(["g2", "g1"])
            rank = self.rng.randrange(self.d.groups[group][1])
            pid = rank_pid(self.d, group, rank)
            label = f"{what} {group}.{rank}"
            stop_s = 20
        else:
            name = what.split()[1]
            pid = self.pid_of(name)
            label = what
            stop_s = 5 if name == "dispatcher" else 3
        if pid is None:
            return
        try:
            if what.startswith("kill"):
                os.kill(pid, signal.SIGKILL)
            else:
                os.kill(pid, signal.SIGSTOP)
                self.conts.append((time.monotonic() + stop_s, pid))
        except ProcessLookupError:
            return
        self.log[label] += 1
        print(f"  [{time.strftime('%H:%M:%S')}] {label}", flush=True)


def setup(args):
    d = Deployment("soak", watchdog_s=int(args.minutes * 60 + 600))
    d.make_files()
    d.write_config([("g2", 2, "merged"), ("g1", 1, "merged")], hb=HB_MS, liveness=LIVENESS,
                   extra_worker="watchdog_ms = 2000;")
    with open(d.cfg) as f:
        cfg = f.read()
    with open(d.cfg, "w") as f:
        f.write(cfg.replace("stats_ms = 0;", "stats_ms = 0; progress_ms = 10000;"))
    d.start_router()
    d.start_group("g2")
    d.start_group("g1")
    d.start_dispatcher()
    if not d.wait_ready(["g2", "g1", "dispatcher"]):
        raise RuntimeError("the deployment did not start")
    return d


def check_answer(d, r, kind, body, tally, labels):
    t = tally[r.kind]
    if kind == "error":
        t["error"] += 1
        name = ERR_NAMES.get(body.code, str(body.code))
        tally["errors"][f"{name}: {body.message[:90]}"] += 1
        return
    m = r.meta
    if r.kind == "classify":
        key = (m["prompt"],)
        got = (body.label, bytes(body.text))
        ok = labels.setdefault(key, got) == got
    else:
        mix = [{"expert": e.expert, "alpha": e.alpha} for e in body.mixture.experts]
        ref = d.reference(m["prompt"], m["n"], body.prompt_tokens, Deployment.mix_arg(mix))
        ok = bytes(body.text) == ref.encode()
    t["correct" if ok else "wrong"] += 1
    if not ok:
        print(f"  WRONG {r.kind} {m}: {bytes(body.text)[:60]!r}", flush=True)


def run(args, d, pb):
    rng = random.Random(args.seed)
    stats = {"resubmits": 0, "reconnects": 0, "duplicated": collections.Counter()}
    tally = collections.defaultdict(collections.Counter)
    tally["errors"] = collections.Counter()
    labels = {}
    finish = {"done": {}, "cb": lambda r, k, b: check_answer(d, r, k, b, tally, labels)}
    ctx = zmq.Context()
    clients = [Client(ctx, d.endpoint, pb, stats, d.curve_keys()) for _ in range(args.clients)]
    chaos = Chaos(d, rng, args.every)
    next_id, end = 1, time.monotonic() + args.minutes * 60
    drain_end = None
    while True:
        now = time.monotonic()
        if now >= end and drain_end is None:
            drain_end = now + 120
            print(f"  load stops; waiting up to 120 s for {sum(len(c.inflight) for c in clients)}"
                  " requests in flight", flush=True)
        if drain_end is not None and (now >= drain_end or not any(c.inflight for c in clients)):
            break
        for c in clients:
            while now < end and len(c.inflight) < args.inflight:
                r = make_request(pb, next_id, rng)
                next_id += 1
                tally[r.kind]["sent"] += 1
                c.submit(r)
            c.housekeeping()
        if drain_end is None:
            chaos.supervise()
        else:  # no more strikes, but whatever is down comes back
            chaos.every = 1e9
            chaos.supervise()
        poller = zmq.Poller()
        for c in clients:
            poller.register(c.sock, zmq.POLLIN)
        for sock, _ in poller.poll(20):
            c = next(c for c in clients if c.sock is sock)
            while True:
                try:
                    data = sock.recv(zmq.NOBLOCK)
                except zmq.Again:
                    break
                c.on_message(data, finish)
    for c in clients:
        for r in c.inflight.values():
            tally[r.kind]["lost"] += 1
        c.sock.close(0)
    ctx.term()
    for k, v in stats["duplicated"].items():
        tally[k]["duplicated"] += v
    return tally, stats, chaos.log


def report(args, tally, stats, chaos_log):
    print(f"\nsoak: {args.minutes:g} min, {args.clients} clients x {args.inflight} in flight, "
          f"a strike every {args.every:g} s; {stats['resubmits']} resubmissions, "
          f"{stats['reconnects']} client reconnections")
    print("strikes and restarts: " + ", ".join(f"{k} x{v}" for k, v in sorted(chaos_log.items())))
    cols = ["sent", "correct", "wrong", "error", "lost", "duplicated"]
    print(f"\n| {'kind':9s} | " + " | ".join(f"{c:>10s}" for c in cols) + " |")
    print("|" + "---|" * (len(cols) + 1))
    total = collections.Counter()
    for kind in ("generate", "adaptive", "classify"):
        total.update(tally[kind])
        print(f"| {kind:9s} | " + " | ".join(f"{tally[kind][c]:10d}" for c in cols) + " |")
    print(f"| {'total':9s} | " + " | ".join(f"{total[c]:10d}" for c in cols) + " |")
    if tally["errors"]:
        print("\nerrors:")
        for e, n in tally["errors"].most_common():
            print(f"  {n:5d} x {e}")
    return total


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=20)
    ap.add_argument("--every", type=float, default=10, help="seconds between strikes")
    ap.add_argument("--clients", type=int, default=2)
    ap.add_argument("--inflight", type=int, default=6)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="t2-soak-pb-")
    proto = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "proto")
    subprocess.run(["protoc", f"--python_out={tmp}", f"-I{proto}",
                    os.path.join(proto, "t2.proto")], check=True)
    sys.path.insert(0, tmp)
    import t2_pb2 as pb
    d, ok = None, False
    try:
        d = setup(args)
        tally, stats, log = run(args, d, pb)
        total = report(args, tally, stats, log)
        ok = total["lost"] == 0 and total["duplicated"] == 0 and total["wrong"] == 0 and \
            total["correct"] > 0
        print("\nOK" if ok else "\nFAIL: something was lost, duplicated or wrong")
    finally:
        if d is not None:
            d.cleanup(ok)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
