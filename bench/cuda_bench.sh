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
  rm -rf .devbin && mkdir -p .devbin/files
  cp build/bin/cuda_test build/bin/cuda_bench build/bin/fp4forge .devbin/files/
  for b in .devbin/files/*; do
    ldd "$b" | awk '/=> \// {print $3}' | grep -v -E 'libc\.so|libm\.so|libpthread|libdl|ld-linux|libgcc_s|libstdc\+\+|librt' |
      xargs -r cp -n -t .devbin/files/
  done
  tar cJf .devbin/devbin.tar.xz -C .devbin/files . && rm -r .devbin/files  # ICU's data alone is 30 MB unpacked
  exit 0
fi
[[ -f .devbin/devbin.tar.xz ]] && tar xJf .devbin/devbin.tar.xz -C .devbin
export LD_LIBRARY_PATH=$PWD/.devbin${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv
.devbin/cuda_test
compute-sanitizer --tool memcheck --print-limit 5 .devbin/cuda_test --gtest_brief=1 | tail -3
for rule in amax mse 4over6; do  # quantize --device cuda writes the CPU's bytes
  .devbin/fp4forge quantize models/default /tmp/q-cpu-$rule --scale $rule --quiet
  .devbin/fp4forge quantize models/default /tmp/q-gpu-$rule --scale $rule --quiet --device cuda
  cmp /tmp/q-cpu-$rule/model.safetensors /tmp/q-gpu-$rule/model.safetensors && echo "quantize --device cuda --scale $rule: identical bytes"
done
.devbin/cuda_bench
python3 bench/torch_nvfp4_gpu.py
python3 bench/torch_gemm_gpu.py
