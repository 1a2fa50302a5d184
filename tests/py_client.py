#!/usr/bin/python3
"""py_client.py - an independent client of the T2 router, in Python.

It shares nothing with the C client library but proto/t2.proto, compiled here with
`protoc --python_out` into a temporary folder: Debian's python3-zmq and python3-protobuf talk
to a t2-router and an echo_worker (both from $T2_BIN) over loopback TCP, with CurveZMQ on
(keys from `t2 keygen`; pyzmq's curve_* socket options; a client without the key gets no
answer). Checks: several
requests in flight at once come back complete (chunks and result text equal to the prompt,
UTF-8 split across chunks included), a request with an explicit mixture and sampling goes
through, bad input gets Error replies with T2 codes, the counters move, and the router stops
cleanly on SIGTERM. Exits 77 (skip) without python3-zmq, python3-protobuf or protoc.
"""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

try:
    import zmq
    import google.protobuf  # noqa: F401
except ImportError as e:
    print(f"SKIP: {e} (install python3-zmq and python3-protobuf)")
    sys.exit(77)

PROTOC = shutil.which("protoc")
if not PROTOC:
    print("SKIP: protoc not found (install protobuf-compiler)")
    sys.exit(77)

HERE = os.environ.get("T2_TESTS", os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, HERE)
from dist_util import read_key, curve_client  # noqa: E402
PROTO_DIR = os.path.join(HERE, "..", "proto")
BIN = os.environ.get("T2_BIN")
if not BIN or not os.access(os.path.join(BIN, "t2-router"), os.X_OK):
    print("FAIL: set T2_BIN to the folder holding t2-router and echo_worker")
    sys.exit(1)

# T2 error codes (shared/t2_err.h)
T2_EPROTO, T2_ENOTFOUND = -9, -8
HB_MS = 100

children = []
passed = failed = 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print(f"check failed: {what}", file=sys.stderr)


def on_alarm(signum, frame):
    print("py_client: watchdog: over 40 s, killing everything", file=sys.stderr)
    for p in children:
        p.kill()
    os._exit(1)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Client:
    """A DEALER socket speaking t2.Msg frames, heartbeating while it waits."""

    def __init__(self, ctx, endpoint, pb, keys=None):
        self.pb = pb
        self.sock = ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        curve_client(self.sock, keys)
        self.sock.connect(endpoint)
        self.next_hb = 0.0

    def send(self, msg, version=1):
        msg.version = version
        self.sock.send(msg.SerializeToString())

    def send_raw(self, data):
        self.sock.send(data)

    def heartbeat(self):
        m = self.pb.Msg()
        m.heartbeat.role = self.pb.ROLE_CLIENT
        self.send(m)
        self.next_hb = time.monotonic() + HB_MS / 1000

    def recv(self, timeout_s):
        """The next message that is not a heartbeat, or None."""
        end = time.monotonic() + timeout_s
        while True:
            now = time.monotonic()
            if now >= self.next_hb:
                self.heartbeat()
            left = end - now
            if left <= 0:
                return None
            if self.sock.poll(int(min(left, HB_MS / 1000) * 1000) + 1):
                m = self.pb.Msg()
                m.ParseFromString(self.sock.recv())
                if m.WhichOneof("body") != "heartbeat":
                    return m

    def stats(self):
        m = self.pb.Msg()
        m.stats_request.SetInParent()
        self.send(m)
        end = time.monotonic() + 2
        while time.monotonic() < end:
            r = self.recv(0.5)
            if r is not None and r.WhichOneof("body") == "stats":
                return r.stats
        return None


def main():
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(40)
    tmp = tempfile.mkdtemp(prefix="t2-pyclient-")
    subprocess.run([PROTOC, f"--python_out={tmp}", f"-I{PROTO_DIR}",
                    os.path.join(PROTO_DIR, "t2.proto")], check=True)
    sys.path.insert(0, tmp)
    import t2_pb2 as pb

    endpoint = f"tcp://127.0.0.1:{free_port()}"
    k = os.path.join(tmp, "keys")
    os.mkdir(k)
    subprocess.run([os.path.join(BIN, "t2"), "keygen", f"{k}/router", f"{k}/worker",
                    f"{k}/client"], check=True, capture_output=True)
    keys = read_key(f"{k}/client.key")
    keys["server"] = read_key(f"{k}/router.pub")["public"]
    log = open(os.path.join(tmp, "router.log"), "w")
    router = subprocess.Popen([os.path.join(BIN, "t2-router"), "--bind", endpoint,
                               "--heartbeat-ms", str(HB_MS), "--liveness", "5",
                               "--service", "echo", "--curve-key", f"{k}/router.key",
                               "--allow-clients", f"{k}/client.pub",
                               "--allow-workers", f"{k}/worker.pub"], stdout=log, stderr=log)
    children.append(router)
    worker = subprocess.Popen([os.path.join(BIN, "echo_worker"), "--endpoint", endpoint,
                               "--service", "echo", "--capacity", "3", "--chunk-bytes", "5",
                               "--heartbeat-ms", str(HB_MS), "--liveness", "5",
                               "--router-public", f"{k}/router.pub", "--key", f"{k}/worker.key"],
                              stdout=log, stderr=log)
    children.append(worker)

    ctx = zmq.Context()
    plain = Client(ctx, endpoint, pb)  # no key: no handshake, so no connection to send on
    plain.sock.setsockopt(zmq.SNDTIMEO, 1000)
    try:
        got = plain.stats()
    except zmq.Again:
        got = None
    check(got is None, "a client without the key got an answer")
    plain.sock.close(0)
    c = Client(ctx, endpoint, pb, keys)
    end = time.monotonic() + 5
    st = None
    while time.monotonic() < end:
        st = c.stats()
        if st is not None and st.workers == 1:
            break
        time.sleep(0.05)
    check(st is not None and st.workers == 1, "the echo worker registered")

    # several requests in flight at once
    prompts = {}
    for i in range(1, 9):
        text = f"python request {i}: " + "héllo wörld ✓ " * i
        prompts[i] = text.encode()
        m = pb.Msg()
        m.request.request_id = i
        m.request.service = "echo"
        m.request.task.prompt = prompts[i]
        m.request.task.sampling.max_tokens = 64
        m.request.task.sampling.temperature = 0.0
        m.request.task.sampling.seed = 1234 + i
        c.send(m)
    got = {i: b"" for i in prompts}
    chunks = {i: 0 for i in prompts}
    results = {}
    end = time.monotonic() + 10
    while len(results) < len(prompts) and time.monotonic() < end:
        m = c.recv(0.5)
        if m is None:
            continue
        kind = m.WhichOneof("body")
        if kind == "chunk":
            check(m.chunk.request_id in prompts and m.chunk.request_id not in results,
                  f"chunk for a live request ({m.chunk.request_id})")
            check(m.chunk.seq == chunks[m.chunk.request_id], "chunks in order")
            got[m.chunk.request_id] += m.chunk.text
            chunks[m.chunk.request_id] += 1
        elif kind == "result":
            check(m.result.request_id not in results, "one result per request")
            results[m.result.request_id] = m.result
        else:
            check(False, f"unexpected {kind}: {m}")
    check(len(results) == len(prompts), f"{len(results)} of {len(prompts)} results")
    for i, r in results.items():
        check(got[i] == prompts[i], f"request {i}: chunks rebuild the prompt")
        check(r.text == prompts[i], f"request {i}: result text")
        check(r.finish_reason == pb.FINISH_STOP, f"request {i}: finish reason")
        check(r.label == "echo", f"request {i}: label")
        check(r.chunks == chunks[i], f"request {i}: {r.chunks} chunks announced, {chunks[i]} seen")
        check(r.HasField("pass2_ms") and r.pass2_ms >= 0, f"request {i}: pass-2 time")
    print(f"ok   {len(results)} concurrent requests echoed")

    # an explicit mixture and token ids go through the router untouched
    m = pb.Msg()
    m.request.request_id = 100
    m.request.service = "echo"
    m.request.task.tokens.extend([1, 22, 333])
    m.request.task.adaptation.mode = pb.ADAPT_MIXTURE
    e = m.request.task.adaptation.mixture.experts.add()
    e.expert, e.alpha = "math", 0.7
    e = m.request.task.adaptation.mixture.experts.add()
    e.expert = "code"
    e.matrix_alpha.extend([0.1, 0.2, 0.3])
    c.send(m)
    r = None
    while True:
        x = c.recv(3)
        if x is None or x.WhichOneof("body") != "chunk":
            r = x
            break
    check(r is not None and r.WhichOneof("body") == "result" and r.result.text == b"1 22 333",
          f"mixture + tokens request: {r}")
    print("ok   mixture and token-id request")

    # bad input: each answered with an Error carrying a T2 code
    before = c.stats()
    c.send_raw(b"\x08\x01\xff\xff garbage")
    r = c.recv(2)
    check(r is not None and r.WhichOneof("body") == "error" and r.error.code == T2_EPROTO,
          f"garbage -> EPROTO: {r}")
    m = pb.Msg()
    m.request.request_id = 200
    m.request.service = "echo"
    m.request.task.prompt = b"x"
    c.send(m, version=7)
    r = c.recv(2)
    check(r is not None and r.WhichOneof("body") == "error" and r.error.code == T2_EPROTO
          and r.error.request_id == 200, f"wrong version -> EPROTO: {r}")
    m.request.service = "nope"
    c.send(m)
    r = c.recv(2)
    check(r is not None and r.WhichOneof("body") == "error" and r.error.code == T2_ENOTFOUND
          and r.error.request_id == 200, f"unknown service -> ENOTFOUND: {r}")
    m = pb.Msg()
    m.request.request_id = 201
    m.request.service = "echo"
    m.request.task.prompt = b"x"
    m.request.task.adaptation.mode = pb.ADAPT_MIXTURE
    for name in ("math", "math"):
        e = m.request.task.adaptation.mixture.experts.add()
        e.expert, e.alpha = name, 0.5
    c.send(m)
    r = c.recv(2)
    check(r is not None and r.WhichOneof("body") == "error" and r.error.code == T2_EPROTO
          and "twice" in r.error.message, f"duplicate expert -> EPROTO: {r}")
    after = c.stats()
    check(after is not None and before is not None
          and after.decode_errors - before.decode_errors == 3
          and after.not_found - before.not_found == 1, "decode_errors +3, not_found +1")
    print("ok   bad input answered with error codes")

    # still serving after all that
    m = pb.Msg()
    m.request.request_id = 300
    m.request.service = "echo"
    m.request.task.prompt = b"still here"
    c.send(m)
    text = b""
    while True:
        x = c.recv(3)
        if x is None or x.WhichOneof("body") != "chunk":
            break
        text += x.chunk.text
    check(x is not None and x.WhichOneof("body") == "result" and text == b"still here",
          "a good request after the bad ones")

    c.sock.close()
    ctx.term()
    worker.send_signal(signal.SIGTERM)
    check(worker.wait(5) == 0, "echo_worker exits 0 on SIGTERM")
    router.send_signal(signal.SIGTERM)
    check(router.wait(5) == 0, "t2-router exits 0 on SIGTERM")
    log.close()
    with open(os.path.join(tmp, "router.log")) as f:
        text = f.read()
    check("shutdown: requests=" in text, "counters logged at shutdown")
    if failed:
        print(f"router log kept in {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
