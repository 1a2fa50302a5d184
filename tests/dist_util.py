"""dist_util.py - shared by the distributed-system tests (dist_system.py, dist_faults.py,
py_generate.py): a scratch deployment on stories260K with SVD factors, random experts and a
profile made here, processes started and always killed, and `t2 run` as the reference.

Everything runs on loopback with short heartbeats and CURVE on (keys made here with
`t2 keygen`, one per role; Python clients use the client key: Deployment.curve_keys); a
watchdog (SIGALRM) kills every child and fails the test if it runs too long. Exits 77 (skip)
when the model or mpirun is missing.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

BIN = os.environ.get("T2_BIN", "/work/main/build/bin")
ASSETS = os.environ.get("T2_ASSETS", os.path.join(os.path.dirname(__file__), "..", "..", "shared", "assets"))
MODEL = os.path.join(ASSETS, "models", "stories260K.bin")
TOKENIZER = os.path.join(ASSETS, "models", "tok512.bin")
T2_ENOTFOUND, T2_ERANGE, T2_EINVAL, T2_EPROTO = -8, -5, -4, -9

ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OMPI_MCA_btl_vader_single_copy_mechanism="none", T2_LOG_LEVEL="warn")


def skip(why):
    print(f"SKIP: {why}")
    sys.exit(77)


def read_key(path):
    """A key file of t2 keygen as {"public": Z85, "secret": Z85 (a .key file only)}."""
    keys = {}
    with open(path) as f:
        for line in f:
            if "=" in line and not line.startswith("#"):
                k, v = line.split("=", 1)
                keys[k.strip()] = v.strip()
    return keys


def curve_client(sock, keys):
    """Make a zmq socket a CURVE client with keys from Deployment.curve_keys (None: plain)."""
    if keys:
        sock.curve_serverkey = keys["server"].encode()
        sock.curve_publickey = keys["public"].encode()
        sock.curve_secretkey = keys["secret"].encode()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Checks:
    def __init__(self, name):
        self.name, self.passed, self.failed = name, 0, 0

    def __call__(self, cond, what):
        if cond:
            self.passed += 1
        else:
            self.failed += 1
            print(f"check failed: {what}", file=sys.stderr, flush=True)
        return cond

    def done(self):
        print(f"{self.passed} passed, {self.failed} failed")
        return 0 if self.failed == 0 else 1


class Deployment:
    """A scratch deployment: files in a temp dir, processes tracked and killed at exit."""

    def __init__(self, name, watchdog_s=240):
        for f in ("t2", "t2-router", "t2-worker", "t2-dispatcher", "t2-profile"):
            if not os.access(os.path.join(BIN, f), os.X_OK):
                print(f"FAIL: {BIN}/{f} not found (set T2_BIN)")
                sys.exit(1)
        if not (os.path.exists(MODEL) and (not TOKENIZER or os.path.exists(TOKENIZER))):
            skip(f"{MODEL} or {TOKENIZER} not found (set T2_ASSETS)")
        if not shutil.which("mpirun"):
            skip("mpirun not found")
        self.dir = tempfile.mkdtemp(prefix=f"t2_{name}.")
        self.procs = {}  # name -> Popen
        self.port = free_port()
        self.endpoint = f"tcp://127.0.0.1:{self.port}"
        self.ref_cache = {}
        signal.signal(signal.SIGALRM, self._watchdog)
        signal.alarm(watchdog_s)
        self.watchdog_s = watchdog_s

    def _watchdog(self, signum, frame):
        print(f"watchdog: over {self.watchdog_s} s, killing everything", file=sys.stderr, flush=True)
        self.kill_all()
        self.dump_logs()
        os._exit(1)

    def path(self, *p):
        return os.path.join(self.dir, *p)

    # ---- files ----

    def run(self, *args, check=True):
        r = subprocess.run([os.path.join(BIN, args[0])] + list(args[1:]), capture_output=True,
                           text=True, env=ENV, timeout=120)
        if check and r.returncode != 0:
            raise RuntimeError(f"{args}: exit {r.returncode}: {r.stderr}")
        return r

    def make_files(self, experts=("rand1", "rand2", "rand3", "cls")):
        """SVD factors, random experts (noise 0.5, seeds 1..), a profile p1 (per expert) and
        pm (per matrix)."""
        os.makedirs(self.path("experts"))
        self.factors = self.path("experts", "factors.gguf")
        self.run("t2", "decompose", "-m", MODEL, "-o", self.factors, "--targets", "mlp")
        for i, e in enumerate(experts):
            self.run("t2", "expert", "init", "-m", MODEL, "--factors", self.factors, "-o",
                     self.path("experts", e + ".gguf"), "--name", e, "--noise", "0.5",
                     "--seed", str(i + 1))
        self.run("t2-profile", "create", "-o", self.path("experts", "p1.gguf"), "--name", "p1",
                 "--mix", "rand1=0.3,rand2=0.9", "--task", "stories")
        # per matrix: 5 layers x 3 MLP matrices = 15 numbers per expert
        with open(self.path("pm.txt"), "w") as f:
            f.write(" ".join(f"{0.1 * (i % 7):.1f}" for i in range(15)) + "\n")
            f.write(" ".join(f"{1.0 - 0.05 * i:.2f}" for i in range(15)) + "\n")
        self.run("t2-profile", "create", "-o", self.path("experts", "pm.gguf"), "--name", "pm",
                 "--mix", "rand2=1,rand3=1", "--matrix-alpha", self.path("pm.txt"))

    def make_keys(self):
        """Key pairs for the router, workers, dispatchers and one client (t2 keygen)."""
        k = self.path("keys")
        if not os.path.exists(os.path.join(k, "router.key")):  # once per deployment folder
            os.makedirs(os.path.join(k, "clients"), exist_ok=True)
            self.run("t2", "keygen", *(os.path.join(k, n) for n in
                                       ("router", "worker", "dispatcher", "client")))
            shutil.copy(os.path.join(k, "client.pub"), os.path.join(k, "clients"))
        return f"""security = {{ curve = true; router_key = "{k}/router.key";
  router_public = "{k}/router.pub"; client_key = "{k}/client.key"; worker_key = "{k}/worker.key";
  dispatcher_key = "{k}/dispatcher.key"; clients = "{k}/clients"; workers = "{k}/worker.pub";
  dispatchers = "{k}/dispatcher.pub"; }};
"""

    def curve_keys(self):
        """The client's CURVE keys for a Python client (curve_client), or None when off."""
        if not self.curve:
            return None
        me = read_key(self.path("keys", "client.key"))
        me["server"] = read_key(self.path("keys", "router.pub"))["public"]
        return me

    def write_config(self, groups, extra_worker="", extra_dispatcher="", hb=100, liveness=5,
                     worker_log="info", capacity=4, curve=True):
        gl = ",\n  ".join("{ name = \"%s\"; ranks = %d; apply = \"%s\"; %s }" %
                          (g[0], g[1], g[2], g[3] if len(g) > 3 else "") for g in groups)
        cfg = f"""# test deployment
version = 1;
router = {{ bind = "{self.endpoint}"; endpoint = "{self.endpoint}";
           heartbeat_ms = {hb}; liveness = {liveness}; stats_ms = 0; }};
model = {{ path = "{MODEL}"; tokenizer = "{TOKENIZER}"; factors = "experts/factors.gguf";
          classifier_expert = "cls"; }};
worker = {{ capacity = {capacity}; classify_capacity = 2; max_tokens = 48; log_level = "{worker_log}"; {extra_worker} }};
dispatcher = {{ capacity = 64; labels = {{ other = "rand3"; }}; log_level = "info"; {extra_dispatcher} }};
groups = (
  {gl}
);
"""
        self.curve = curve
        if curve:
            cfg += self.make_keys()
        self.cfg = self.path("t2.cfg")
        with open(self.cfg, "w") as f:
            f.write(cfg)
        self.groups = {g[0]: g for g in groups}

    # ---- processes ----

    def _spawn(self, name, argv):
        log = open(self.path(name + ".log"), "a")
        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=ENV,
                             start_new_session=True)
        log.close()
        self.procs[name] = p
        return p

    def start_router(self):
        args = self.run("t2-config", "router-args", self.cfg).stdout.split()
        return self._spawn("router", [os.path.join(BIN, "t2-router")] + args)

    def start_dispatcher(self, name="dispatcher"):
        return self._spawn(name, [os.path.join(BIN, "t2-dispatcher"), "-c", self.cfg,
                                  "--pid-file", self.path(name + ".pid")])

    def start_group(self, name):
        ranks = self.groups[name][1]
        pidf = self.path(name + ".head.pid")
        if os.path.exists(pidf):
            os.unlink(pidf)
        return self._spawn(name, ["mpirun", "--oversubscribe", "--bind-to", "none", "-np",
                                  str(ranks), os.path.join(BIN, "t2-worker"), "-c", self.cfg,
                                  "--group", name, "--pid-file", pidf])

    def head_pid(self, name, timeout=20):
        pidf = self.path(name + ".head.pid")
        t = time.time()
        while time.time() - t < timeout:
            try:
                with open(pidf) as f:
                    return int(f.read().strip())
            except (OSError, ValueError):
                time.sleep(0.05)
        raise RuntimeError(f"group {name}: no pid file")

    def wait_log(self, name, text, timeout=30, count=1, poll=0.05):
        t = time.time()
        while time.time() - t < timeout:
            try:
                with open(self.path(name + ".log")) as f:
                    if f.read().count(text) >= count:
                        return True
            except OSError:
                pass
            time.sleep(poll)
        return False

    def wait_ready(self, names, timeout=30):
        """Every worker group and dispatcher in names has registered with the router."""
        ok = True
        for n in names:
            ok &= self.wait_log(n, "serving", timeout)
        time.sleep(0.3)  # their Ready messages reach the router
        return ok

    def stop(self, name, sig=signal.SIGTERM, timeout=15):
        """Signal a process (a group: its head rank) and wait; its exit code (None: killed)."""
        p = self.procs.get(name)
        if not p:
            return None
        try:
            if name in getattr(self, "groups", {}):
                os.kill(self.head_pid(name), sig)  # a group: its head rank
            else:
                p.send_signal(sig)
        except (ProcessLookupError, RuntimeError):
            pass
        try:
            rc = p.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
            rc = None
        del self.procs[name]
        return rc

    def kill_all(self):
        for name, p in list(self.procs.items()):
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        for p in self.procs.values():
            try:
                p.wait(5)
            except Exception:
                pass
        self.procs = {}

    def dump_logs(self, tail=30):
        for f in sorted(os.listdir(self.dir)):
            if f.endswith(".log"):
                with open(self.path(f), errors="replace") as fh:
                    lines = fh.readlines()[-tail:]
                print(f"---- {f} (last {len(lines)} lines)", file=sys.stderr)
                sys.stderr.write("".join(lines))

    def cleanup(self, ok):
        self.kill_all()
        signal.alarm(0)
        if not ok:
            self.dump_logs()
            print(f"(files kept in {self.dir})", file=sys.stderr)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    # ---- clients ----

    def submit(self, *args, timeout=120, service=None):
        """t2 submit --json: (exit code, list of answers by index, stderr)."""
        argv = [os.path.join(BIN, "t2"), "submit", "-c", self.cfg, "--json"] + list(args)
        if service:
            argv += ["--service", service]
        r = subprocess.run(argv, capture_output=True, text=True, env=ENV, timeout=timeout)
        out = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
        return r.returncode, out, r.stderr

    def submit_bg(self, *args, service=None):
        argv = [os.path.join(BIN, "t2"), "submit", "-c", self.cfg, "--json"] + list(args)
        if service:
            argv += ["--service", service]
        return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=ENV)

    @staticmethod
    def collect(p, timeout=120):
        out, err = p.communicate(timeout=timeout)
        return p.returncode, [json.loads(l) for l in out.splitlines() if l.strip()], err

    # ---- the reference ----

    def n_tokens(self, text):
        """Tokens of text as t2 run encodes a prompt (with BOS)."""
        r = subprocess.run([os.path.join(BIN, "tok_encode"), "-b", TOKENIZER, "512"], input=text,
                           capture_output=True, text=True, env=ENV, timeout=30)
        return len(r.stdout.split())

    def prompt_of(self, n):
        """A prompt of exactly n tokens (with BOS), made of story words."""
        words = ("the little dog ran to the big tree and saw a red ball in the park so he was "
                 "happy and played with his friend all day long").split()
        text = ""
        i = 0
        while self.n_tokens(text) < n:
            text = (text + " " + words[i % len(words)]).strip()
            i += 1
        # drop trailing characters until the count is exact (merges can jump by more than one)
        while self.n_tokens(text) > n and len(text) > 1:
            text = text[:-1].rstrip()
        return text

    @staticmethod
    def mix_arg(mixture):
        """A Result's mixture as t2 run's --mix (per-expert α only), or None for base."""
        if not mixture:
            return None
        if any("matrix_alpha" in e for e in mixture):
            raise ValueError("per-matrix mixture")
        return ",".join(f"{e['expert']}={e['alpha']:.9g}" for e in mixture)

    def reference(self, prompt, max_tokens, prompt_tokens, mix=None, apply="merged",
                  temperature=0.0, top_p=0.9, seed=0):
        """The text `t2 run` generates after the prompt (greedy unless a temperature is given),
        for the same number of new tokens: t2 run's -n counts the prompt (with BOS) and samples
        n - n_prompt + 1 tokens."""
        key = (prompt, max_tokens, mix, apply, temperature, top_p, seed)
        if key in self.ref_cache:
            return self.ref_cache[key]
        n = min(prompt_tokens + max_tokens - 1, 512)
        argv = ["t2", "run", "-m", MODEL, "-t", repr(temperature), "--top-p", repr(top_p), "-s",
                str(seed), "-n", str(n), "-p", prompt, "-j", "1"] + (["-z", TOKENIZER] if TOKENIZER else [])
        if mix:
            argv += ["--factors", self.factors, "--mix", mix, "--apply", apply]
        out = self.run(*argv).stdout
        if not out.startswith(prompt) or not out.endswith("\n"):
            raise RuntimeError(f"t2 run printed {out!r} for prompt {prompt!r}")
        text = out[len(prompt):-1]
        self.ref_cache[key] = text
        return text
