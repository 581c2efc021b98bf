#!/usr/bin/env bash
# Sets fp4forge up on a fresh Debian 12 machine: installs what is missing (apt packages when run as
# root; with --tests also the Python test oracles from PyPI), configures and builds into build/.
#   scripts/setup.sh           build the tool
#   scripts/setup.sh --tests   also the test oracles (numpy, ml_dtypes, torch CPU)
set -euo pipefail
cd "$(dirname "$0")/.."

with_tests=0
[[ "${1:-}" == "--tests" ]] && with_tests=1

packages=(cmake g++ make pkg-config python3 python3-venv libhwy-dev libcli11-dev nlohmann-json3-dev libfmt-dev
          libgtest-dev libbenchmark-dev libpcre2-dev libsentencepiece-dev libicu-dev)
# The sanitizer and fuzz build (scripts/sanitize.sh) compiles with clang and its libFuzzer.
((with_tests)) && packages+=(clang libclang-rt-14-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -eq 0 ]]; then
    echo "setup: installing ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "setup: missing Debian packages: ${missing[*]}" >&2
    echo "setup: run as root, or: sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
fi

cmake_args=(-S . -B build -DCMAKE_BUILD_TYPE=Release)
# The CUDA kernels build wherever nvcc is (CUDA's own install path need not be on PATH).
if ! command -v nvcc >/dev/null && [[ -x /usr/local/cuda/bin/nvcc ]]; then
  cmake_args+=(-DCMAKE_CUDA_COMPILER=/usr/local/cuda/bin/nvcc)
fi
if ((with_tests)); then
  # The oracles go into the current Python when pip may write there, else into build/venv.
  python=$(command -v python3)
  if ! python3 -c "import numpy, ml_dtypes, safetensors, torch, transformers, modelopt, sentencepiece" 2>/dev/null; then
    if ! python3 -m pip install -q -r tests/oracle/requirements.txt 2>/dev/null; then
      python3 -m venv build/venv
      build/venv/bin/pip install -q -r tests/oracle/requirements.txt
      python=$PWD/build/venv/bin/python
    fi
  fi
  cmake_args+=(-DPython3_EXECUTABLE="$python")
fi
cmake "${cmake_args[@]}" >/dev/null
cmake --build build -j"$(nproc)"
