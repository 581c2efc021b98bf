#!/usr/bin/env bash
# The sanitizer build (build-asan/): everything compiled by clang under AddressSanitizer +
# UndefinedBehaviorSanitizer (every report fatal) with the libFuzzer targets of tests/fuzz/; then the
# tests that need no Python oracle, each fuzz target among them for FP4FORGE_FUZZ_SECONDS (60).
# Run scripts/setup.sh --tests first: it installs clang and libclang-rt-14-dev.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build-asan -DCMAKE_CXX_COMPILER=clang++ -DFP4FORGE_SANITIZE=ON -DFP4FORGE_FUZZ=ON \
      -DFP4FORGE_FUZZ_SECONDS="${FP4FORGE_FUZZ_SECONDS:-60}" -DFP4FORGE_BUILD_BENCHMARKS=OFF -DFP4FORGE_CUDA=OFF >/dev/null
cmake --build build-asan -j"$(nproc)"
ctest --test-dir build-asan -j"$(nproc)" -LE oracle --output-on-failure
