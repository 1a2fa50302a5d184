"""gateway_util.py - shared by the gateway tests (gateway_http.py, gateway_sdk.py): a scratch
T2 deployment on stories260K (dist_util.Deployment: router, dispatcher, one worker group, SVD
factors, random experts rand1..rand3, the classifier expert cls, profiles p1 and pm) with
t2-gateway in front of it, and a small HTTP client."""
import http.client
import json
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dist_util import BIN, Deployment, free_port, skip  # noqa: E402,F401

KEY_ALICE = "sk-alice-0123456789abcdef"   # every model
KEY_BOB = "sk-bob-0123456789abcdef0"      # t2-base and t2-base:none only


class GatewayDeployment(Deployment):
    def __init__(self, name, watchdog_s=240):
        if not os.access(os.path.join(BIN, "t2-gateway"), os.X_OK):
            print(f"FAIL: {BIN}/t2-gateway not found (set T2_BIN)")
            sys.exit(1)
        super().__init__(name, watchdog_s)

    def setup(self, gateway_extra="", capacity=4, **config):
        """config: more write_config arguments (hb, liveness, ...)."""
        self.make_files()
        self.write_config([("g", 1, "merged")], capacity=capacity, **config)
        with open(self.path("keys.txt"), "w") as f:
            f.write("# test keys\n")
            f.write(f"alice {KEY_ALICE}\n")
            f.write(f"bob {KEY_BOB} t2-base t2-base:none   # only the base model\n")
        self.http_port = free_port()
        with open(self.cfg, "a") as f:
            f.write(f"""gateway = {{ bind = "127.0.0.1"; port = {self.http_port}; keys = "keys.txt";
  timeout_ms = 30000; connection_timeout_s = 3; max_body = 65536; {gateway_extra} }};
""")
        self.start_router()
        self.start_group("g")
        self.start_dispatcher()
        if not self.wait_ready(["g", "dispatcher"]):
            raise RuntimeError("the deployment did not start")
        self.start_gateway("gateway", self.cfg, self.http_port)

    def start_gateway(self, name, cfg, port):
        pidf = self.path(name + ".pid")
        p = self._spawn(name, [os.path.join(BIN, "t2-gateway"), "-c", cfg, "--pid-file", pidf])
        t = time.time()
        while not os.path.exists(pidf):
            if p.poll() is not None or time.time() - t > 10:
                raise RuntimeError(f"{name} did not start")
            time.sleep(0.05)
        # /health turns 200 once the gateway has the router's counters
        t = time.time()
        while time.time() - t < 10:
            if self.request("GET", "/health", port=port)[0] == 200:
                return p
            time.sleep(0.1)
        raise RuntimeError(f"{name}: /health never answered 200")

    def request(self, method, path, body=None, key=KEY_ALICE, headers=None, port=None,
                timeout=60):
        """(status, headers dict (lowercase names), body bytes)."""
        c = http.client.HTTPConnection("127.0.0.1", port or self.http_port, timeout=timeout)
        h = dict(headers or {})
        if key:
            h["Authorization"] = "Bearer " + key
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
            h.setdefault("Content-Type", "application/json")
        try:
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            data = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        except (ConnectionError, OSError) as e:
            return 0, {}, str(e).encode()
        finally:
            c.close()

    def post(self, path, body, **kw):
        st, h, data = self.request("POST", path, body, **kw)
        try:
            return st, json.loads(data) if data else None
        except ValueError:
            return st, data

    def sse(self, path, body, key=KEY_ALICE):
        """POST a streaming request: (status, [data payloads as str], raw text)."""
        s = socket.create_connection(("127.0.0.1", self.http_port), timeout=60)
        b = json.dumps(body).encode()
        s.sendall((f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n"
                   f"Content-Type: application/json\r\nContent-Length: {len(b)}\r\n"
                   "Connection: close\r\n\r\n").encode() + b)
        raw = b""
        while True:
            d = s.recv(65536)
            if not d:
                break
            raw += d
        s.close()
        head, _, rest = raw.partition(b"\r\n\r\n")
        status = int(head.split(b" ")[1])
        if b"chunked" in head.lower():
            rest = dechunk(rest)
        text = rest.decode("utf-8", errors="replace")
        events = [e[6:] for e in text.split("\n\n") if e.startswith("data: ")]
        return status, events, text

    def gateway_rss_kb(self, name="gateway"):
        with open(f"/proc/{self.procs[name].pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0


def dechunk(b):
    out = b""
    while b:
        line, _, b = b.partition(b"\r\n")
        n = int(line.split(b";")[0] or b"0", 16)
        if n == 0:
            break
        out += b[:n]
        b = b[n + 2:]
    return out


def is_openai_error(body, status=None):
    """The body is {"error": {"message": str, "type": str, "param": str|null, "code": ...}}."""
    if not isinstance(body, dict) or not isinstance(body.get("error"), dict):
        return False
    e = body["error"]
    return (isinstance(e.get("message"), str) and e["message"] != "" and
            isinstance(e.get("type"), str) and "param" in e and "code" in e)
