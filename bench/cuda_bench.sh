#!/usr/bin/env bash
# Issue 16's GPU figures in one device call: the correctness tests (also under compute-sanitizer),
# the quantization and W4A16 product tables, and the PyTorch / cuBLAS baselines. The binaries are built on the development machine (nvcc is there,
# the GPU machine lacks the project's Debian libraries) and travel in .devbin/ with their shared
# libraries:
#   bench/cuda_bench.sh --pack     (here; then carry .devbin to the device and run)
#   bench/cuda_bench.sh            (on the device)
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ "${1:-}" == "--pack" ]]; then
  rm -rf .devbin && mkdir -p .devbin
  cp build/bin/cuda_test build/bin/cuda_bench .devbin/
  for b in .devbin/cuda_test .devbin/cuda_bench; do
    ldd "$b" | awk '/=> \// {print $3}' | grep -v -E 'libc\.so|libm\.so|libpthread|libdl|ld-linux|libgcc_s|libstdc\+\+|librt' |
      xargs -r cp -n -t .devbin/
  done
  exit 0
fi
export LD_LIBRARY_PATH=$PWD/.devbin${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv
.devbin/cuda_test
compute-sanitizer --tool memcheck --print-limit 5 .devbin/cuda_test --gtest_brief=1 | tail -3
.devbin/cuda_bench
python3 bench/torch_nvfp4_gpu.py
python3 bench/torch_gemm_gpu.py
