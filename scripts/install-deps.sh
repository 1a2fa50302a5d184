#!/bin/sh
# Install everything T2 builds and tests with, from Debian's packages (run as root, or with sudo).
#   build:  cmake, a C compiler, ZeroMQ, protobuf-c (+ protoc-c), Open MPI, OpenBLAS + LAPACKE,
#           libconfig, jansson, libmicrohttpd (t2-gateway)
#   tests:  clang (libFuzzer), Debian's python3 with torch, sentencepiece, zmq and protobuf
#           (independent references and clients); node + npm and the npm packages of
#           tests/node (the byte-level BPE reference, @lenml/tokenizers) and tests/node-gateway
#           (the official OpenAI SDK), pinned by their package-lock.json; python3-jinja2 (the
#           chat-template reference), python3-sklearn (bench/routing.py: the n-gram baseline),
#           promtool (prometheus: the /metrics check), curl (the demo),
#           chromium (the chat page in a browser, driven by tests/node-gateway's puppeteer-core)
set -eu
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
    build-essential cmake pkg-config clang libclang-rt-dev curl \
    libzmq3-dev libsodium-dev libprotobuf-c-dev protobuf-c-compiler protobuf-compiler \
    libopenmpi-dev openmpi-bin \
    libopenblas-dev liblapacke-dev \
    libconfig-dev libjansson-dev libmicrohttpd-dev \
    python3 python3-numpy python3-torch python3-sentencepiece python3-zmq python3-protobuf \
    python3-jinja2 python3-sklearn prometheus
$SUDO apt-get install -y -qq --no-install-recommends chromium
# node/npm: Debian's unless a node is already installed (another packaging of it would conflict);
# then the pinned npm packages of the tests (package-lock.json): @lenml/tokenizers for the
# tokenizer parity test, the official OpenAI SDK for tests/gateway_sdk.py and puppeteer-core
# (drives chromium; it downloads no browser) for tests/gateway_page.py
command -v npm > /dev/null || $SUDO apt-get install -y -qq --no-install-recommends nodejs npm
npm ci --prefix "$(dirname "$0")/../tests/node" --no-audit --no-fund --silent
npm ci --prefix "$(dirname "$0")/../tests/node-gateway" --no-audit --no-fund --silent
