#!/bin/bash
# The streaming benchmark of `fp4forge quantize` (docs/BENCHMARKS.md): pairs of cold runs, each after
# dropping the page cache, of `cat CHECKPOINT/*.safetensors > /dev/null` and of `fp4forge quantize
# CHECKPOINT OUT`, and quantize's speed as a share of cat's for each pair. Pairs, because this VM's
# disk speed drifts from hour to hour. Needs root (drop_caches).
#
#   python3 bench/make_large_checkpoint.py /tmp/big
#   sudo bench/stream_vs_cat.sh /tmp/big 10             # output to /dev/shm/stream-vs-cat
#   sudo OUT=/data/out FP4FORGE=build/bin/fp4forge bench/stream_vs_cat.sh /tmp/big 4 --format compressed-tensors
set -euo pipefail

if [[ $# -lt 1 ]]; then
  echo "usage: $0 CHECKPOINT_DIR [PAIRS=10] [quantize options...]" >&2
  exit 2
fi
in=$1
pairs=${2:-10}
shift $(($# < 2 ? $# : 2))
out=${OUT:-/dev/shm/stream-vs-cat}
bin=${FP4FORGE:-$(dirname "$0")/../build/bin/fp4forge}
if [[ $(id -u) -ne 0 ]]; then
  echo "$0: needs root to drop the page cache (/proc/sys/vm/drop_caches); run it with sudo" >&2
  exit 2
fi
if [[ -e $out ]]; then
  echo "$0: $out exists; remove it or choose another OUT" >&2
  exit 2
fi

drop_caches() {
  sync
  echo 3 >/proc/sys/vm/drop_caches
}

times=$(mktemp)
trap 'rm -f "$times"' EXIT
ratios=()
echo "pair  cat_s  quantize_s  user_s  sys_s  peak_rss_MB  speed_vs_cat"
for i in $(seq "$pairs"); do
  drop_caches
  cat_s=$({ /usr/bin/time -f "%e" sh -c "cat '$in'/*.safetensors > /dev/null"; } 2>&1)
  drop_caches
  # %e wall, %U user, %S sys, %M peak RSS (KB); the old output is removed outside the timed run.
  if ! /usr/bin/time -o "$times" -f "%e %U %S %M" "$bin" quantize --quiet "$@" "$in" "$out" >/dev/null; then
    echo "$0: fp4forge quantize failed (its error is above)" >&2
    exit 1
  fi
  read -r q_s user_s sys_s rss_kb <"$times"
  rm -rf "$out"
  ratio=$(awk -v c="$cat_s" -v q="$q_s" 'BEGIN { printf "%.0f", 100 * c / q }')
  ratios+=("$ratio")
  printf "%4d  %5s  %10s  %6s  %5s  %11d  %11s%%\n" "$i" "$cat_s" "$q_s" "$user_s" "$sys_s" $((rss_kb / 1024)) "$ratio"
done
printf "%s\n" "${ratios[@]}" | sort -n | awk '{ r[NR] = $1 } $1 >= 80 { met++ }
  END { median = NR % 2 ? r[(NR + 1) / 2] : (r[NR / 2] + r[NR / 2 + 1]) / 2
        printf "speed vs cat: median %s%%, range %s-%s%%, %d of %d pairs at 80%% or more\n", median, r[1], r[NR], met, NR }'
