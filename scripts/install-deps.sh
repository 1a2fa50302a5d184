#!/bin/sh
# Install everything T2 builds and tests with, from Debian's packages (run as root, or with sudo).
#   build:  cmake, a C compiler, ZeroMQ, protobuf-c (+ protoc-c), Open MPI, OpenBLAS + LAPACKE,
#           libconfig
#   tests:  clang (libFuzzer), Debian's python3 with torch, sentencepiece, zmq and protobuf
#           (independent references and clients)
set -eu
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
    build-essential cmake pkg-config clang libclang-rt-dev \
    libzmq3-dev libprotobuf-c-dev protobuf-c-compiler protobuf-compiler \
    libopenmpi-dev openmpi-bin \
    libopenblas-dev liblapacke-dev \
    libconfig-dev libjansson-dev \
    python3 python3-numpy python3-torch python3-sentencepiece python3-zmq python3-protobuf \
    python3-jinja2
