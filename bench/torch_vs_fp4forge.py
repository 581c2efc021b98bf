#!/usr/bin/env python3
"""NVFP4 quantization of one 8192 x 8192 BF16 weight: fp4forge against the pure-PyTorch (CPU)
implementation of the same ModelOpt algorithm (scripts/torch_nvfp4.py), same tensor, same threads.
The two must produce identical bytes; the script checks that before printing the ratio.

    python3 bench/torch_vs_fp4forge.py build/lib/libfp4forge_oracle_capi.so [--threads 2]
"""
import argparse
import ctypes
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "scripts"))
import torch_nvfp4  # noqa: E402


def best_of(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("capi", help="path to libfp4forge_oracle_capi.so")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--rows", type=int, default=8192)
    parser.add_argument("--cols", type=int, default=8192)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.environ["OMP_NUM_THREADS"] = str(args.threads)

    lib = ctypes.CDLL(args.capi)
    w = (torch.randn(args.rows, args.cols, generator=torch.Generator().manual_seed(0)) * 0.02).bfloat16()
    n = args.rows * args.cols
    bits = w.view(torch.int16).numpy().view(np.uint16)
    codes = np.empty((args.rows, args.cols // 2), np.uint8)
    scales = np.empty((args.rows, args.cols // 16), np.uint8)
    s2 = ctypes.c_float()

    def ours():
        rc = lib.fp4forge_quantize_nvfp4_bf16(bits.ctypes.data_as(ctypes.c_void_p), ctypes.c_int64(args.rows),
                                              ctypes.c_int64(args.cols), codes.ctypes.data_as(ctypes.c_void_p),
                                              scales.ctypes.data_as(ctypes.c_void_p), ctypes.byref(s2))
        assert rc == 0

    t_torch, (want_codes, want_scales, _) = best_of(lambda: torch_nvfp4.quantize_nvfp4(w), args.repeats)
    t_ours, _ = best_of(ours, args.repeats)
    same = np.array_equal(codes, want_codes.numpy()) and np.array_equal(scales, want_scales.numpy())
    print(f"tensor [{args.rows}, {args.cols}] bf16, {args.threads} threads, best of {args.repeats}")
    print(f"pure PyTorch : {t_torch * 1e3:8.1f} ms  {n / t_torch / 1e9:6.3f} G elements/s  {2 * n / t_torch / 1e9:6.2f} GB/s in")
    print(f"fp4forge     : {t_ours * 1e3:8.1f} ms  {n / t_ours / 1e9:6.3f} G elements/s  {2 * n / t_ours / 1e9:6.2f} GB/s in")
    print(f"speed-up     : {t_torch / t_ours:.1f}x   identical bytes: {same}")
    sys.exit(0 if same else 1)


if __name__ == "__main__":
    main()
