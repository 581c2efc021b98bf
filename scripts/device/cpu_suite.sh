#!/usr/bin/env bash
# Runs this machine's build of the whole test suite on a device host's CPU (no GPU use): the binaries
# and CTest files of build/ staged in .devbuild/ (object files left out), the Debian libraries they
# link, and the pinned oracle wheels the host's image lacks in .whl/. Paths inside CTest files are
# absolute, so the checkout is linked to where it was built. Staging needs rsync.
#   here:   scripts/device/cpu_suite.sh stage
#   there:  scripts/device/cpu_suite.sh run OUT_DIR     (device tool call with carry [".devbuild", ".whl"])
set -uo pipefail
cd "$(dirname "$0")/../.."
case "${1:-}" in
  stage)
    rm -rf .devbuild && mkdir -p .devbuild/syslib
    rsync -a --exclude='*.o' --exclude='*.a' --exclude=venv --exclude=Testing build/ .devbuild/build/
    for lib in libhwy.so.1 libfmt.so.9 libpcre2-8.so.0 libbenchmark.so.1; do
      cp -L "/lib/x86_64-linux-gnu/$lib" .devbuild/syslib/
    done
    echo "$PWD" > .devbuild/built_at
    du -sh .devbuild ;;
  run)
    out=$2
    built_at=$(cat .devbuild/built_at)
    mkdir -p "$(dirname "$built_at")" && ln -sfn "$PWD" "$built_at"
    rm -rf build && cp -r .devbuild/build build
    python=$(grep '^_Python3_EXECUTABLE' build/CMakeCache.txt | cut -d= -f2)
    # A wrapper, not a link: a link to a virtual environment's python loses the environment.
    mkdir -p "$(dirname "$python")" && printf '#!/bin/sh\nexec %s "$@"\n' "$(command -v python3)" > "$python" && chmod +x "$python"
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site LD_LIBRARY_PATH=$PWD/.devbuild/syslib
    { grep -m1 'model name' /proc/cpuinfo; grep -o 'avx512[a-z_0-9]*' /proc/cpuinfo | sort -u | tr '\n' ' '; echo;
      python3 -c 'import torch, transformers; print("torch", torch.__version__, torch.backends.cpu.get_cpu_capability(), "transformers", transformers.__version__)'
      build/bin/cpu_quantize_test --gtest_filter='EveryTarget.TensorAmax*' | grep 'Highway targets'; } | tee "$out/cpu.txt"
    cd "$built_at" && ctest --test-dir build -j8 --output-on-failure 2>&1 | tee "$out/ctest.log" | tail -40 ;;
  *) echo "usage: $0 stage | run OUT_DIR" >&2; exit 2 ;;
esac
