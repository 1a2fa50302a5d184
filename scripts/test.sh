#!/usr/bin/env bash
# The whole test suite, as CI runs it:
#   1. release build (warnings are errors), every ctest label but fuzz;
#   2. AddressSanitizer + UndefinedBehaviorSanitizer build, unit and parity tests;
#   3. clang libFuzzer build, each fuzz target for T2_FUZZ_SECONDS (default 30) seconds.
# Run from the repository root after scripts/install-deps.sh. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
fuzz_seconds=${T2_FUZZ_SECONDS:-30}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

step() { printf '\n=== %s ===\n' "$*"; }

step "release build"
cmake -B build -S . -DT2_WERROR=ON > /dev/null
cmake --build build -j "$jobs"
step "tests (release)"
(cd build && ctest --output-on-failure -LE fuzz)

step "sanitizer build (address, undefined)"
cmake -B build-asan -S . -DT2_SANITIZE=ON -DT2_WERROR=ON > /dev/null
cmake --build build-asan -j "$jobs"
step "unit and parity tests (sanitizers)"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -L 'unit|parity')

step "fuzz build (clang, libFuzzer)"
CC=clang cmake -B build-fuzz -S . -DT2_FUZZ=ON -DT2_FUZZ_SECONDS="$fuzz_seconds" \
    -DCMAKE_C_FLAGS=-fsanitize=fuzzer-no-link,address,undefined > /dev/null
cmake --build build-fuzz -j "$jobs" --target fuzzers
step "fuzz targets, ${fuzz_seconds} s each"
(cd build-fuzz && ctest --output-on-failure -L fuzz)
