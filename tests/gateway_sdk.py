#!/usr/bin/python3
"""gateway_sdk.py - the official OpenAI SDK (npm `openai` in tests/node-gateway, run by node)
against t2-gateway on a real deployment: a greedy completion byte-identical to `t2 run` with the
same mixture, a streamed one reassembling to the same text, models.list(), a 401 and a 400 (and
a 404) as the SDK's typed errors, chat completions as a clear BadRequestError until the workers
render chat templates. Skips (77) without node or tests/node-gateway/node_modules."""
import os
import shutil
import subprocess

from gateway_util import GatewayDeployment, KEY_ALICE, skip
from dist_util import Checks

HERE = os.path.dirname(os.path.abspath(__file__))
NODE_DIR = os.path.join(HERE, "node-gateway")
PROMPT = "Once upon a time"
N = 20
MODEL = "t2-base:mix/rand1=0.6,rand2=0.4"


def main():
    if not shutil.which("node"):
        skip("node not found")
    if not os.path.isdir(os.path.join(NODE_DIR, "node_modules", "openai")):
        skip(f"{NODE_DIR}/node_modules/openai absent: run `npm ci` there "
             "(scripts/install-deps.sh does)")
    check = Checks("gateway_sdk")
    d = GatewayDeployment("gateway_sdk", watchdog_s=200)
    ok = False
    try:
        d.setup()
        want = d.reference(PROMPT, N, d.n_tokens(PROMPT), "rand1=0.6,rand2=0.4")
        r = subprocess.run(["node", os.path.join(NODE_DIR, "sdk_test.mjs"),
                            f"http://127.0.0.1:{d.http_port}/v1", KEY_ALICE, MODEL, PROMPT,
                            str(N), want], capture_output=True, text=True, timeout=120)
        print(r.stdout, end="")
        print(r.stderr, end="")
        check(r.returncode == 0, f"sdk_test.mjs: exit {r.returncode}")
        ok = check.failed == 0
    finally:
        d.cleanup(ok)
    return check.done()


if __name__ == "__main__":
    raise SystemExit(main())
