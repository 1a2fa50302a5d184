#!/usr/bin/python3
"""gateway_page.py - the chat page at / in a real browser: Debian's chromium, headless, driven by
npm's puppeteer-core (tests/node-gateway/page_test.mjs) against t2-gateway on a real deployment
on stories260K. The page picks t2-base:classifier, sends a prompt and must show the streamed
answer the gateway gives that request without streaming (greedy), and the label pass 1 chose.

    gateway_page.py [--screenshot PATH]     (default: the scratch directory's chat-page.png)

Skips (77) without chromium, node or tests/node-gateway/node_modules/puppeteer-core.
"""
import os
import shutil
import subprocess
import sys

from gateway_util import GatewayDeployment, KEY_ALICE, skip
from dist_util import Checks

HERE = os.path.dirname(os.path.abspath(__file__))
NODE_DIR = os.path.join(HERE, "node-gateway")
PROMPT = "Once upon a time, a little dog"
N = 300  # tokens: enough to arrive in several pieces (the gateway gathers 25 ms per event)
MODEL = "t2-base:classifier"


def main():
    shot = None
    if len(sys.argv) == 3 and sys.argv[1] == "--screenshot":
        shot = os.path.abspath(sys.argv[2])
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        skip("chromium not found (Debian package chromium; scripts/install-deps.sh installs it)")
    if not shutil.which("node"):
        skip("node not found")
    if not os.path.isdir(os.path.join(NODE_DIR, "node_modules", "puppeteer-core")):
        skip(f"{NODE_DIR}/node_modules/puppeteer-core absent: run `npm ci` there "
             "(scripts/install-deps.sh does)")
    check = Checks("gateway_page")
    d = GatewayDeployment("gateway_page", watchdog_s=200)
    ok = False
    try:
        d.setup()
        st, b = d.post("/v1/completions", {"model": MODEL, "prompt": PROMPT, "max_tokens": N,
                                           "temperature": 0})
        if check(st == 200 and b["t2"].get("label"), f"the reference request: {st} {b}"):
            r = subprocess.run(["node", os.path.join(NODE_DIR, "page_test.mjs"), chromium,
                                f"http://127.0.0.1:{d.http_port}/", KEY_ALICE, MODEL, PROMPT,
                                str(N), b["choices"][0]["text"], b["t2"]["label"],
                                shot or d.path("chat-page.png")],
                               capture_output=True, text=True, timeout=150)
            print(r.stdout, end="")
            print(r.stderr, end="")
            check(r.returncode == 0, f"page_test.mjs: exit {r.returncode}")
            check(os.path.getsize(shot or d.path("chat-page.png")) > 1000, "a screenshot")
        ok = check.failed == 0
    finally:
        d.cleanup(ok)
    return check.done()


if __name__ == "__main__":
    raise SystemExit(main())
