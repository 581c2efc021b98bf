#!/usr/bin/env bash
# Calibration in bounded memory (issue 15): a Llama-3-8B-shaped checkpoint of 28 layers (14.3 GB of
# BF16, more than half of this machine's 24 GiB) calibrated and quantized to W4A4; prints the
# calibration's peak RSS (fp4forge's own report) and the whole run's (/usr/bin/time), to compare
# with one layer in FP32 (0.87 GB) + the hidden states (tokens x 4096 x 4 bytes) + 512 MiB.
#   bash bench/calibration_memory.sh [WORK_DIR] [TOKENS]
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-/tmp/calib-memory}
tokens=${2:-512}
[[ -f $work/l8b/model.safetensors.index.json ]] || python3 bench/make_llama8b_shaped.py "$work/l8b" --layers 28
sync && echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true  # a cold start where allowed
/usr/bin/time -v build/bin/fp4forge quantize "$work/l8b" "$work/l8b-w4a4" --force --calib models/eval/kjv-calib.txt \
  --calib-tokens "$tokens" 2> "$work/time.log"
grep -E "Maximum resident|Elapsed" "$work/time.log"
