#!/usr/bin/env python3
"""A pure-PyTorch NVFP4 quantizer on the GPU (ModelOpt's dynamic amax rule, as a user without
fp4forge would write it), timed on the same BF16 28672 x 8192 shape as cuda_quantize_bench: the
baseline of issue 16. Prints its median time and input bandwidth (CUDA events, 20 runs after 3).

Usage: torch_nvfp4_gpu.py [ROWS COLS]
"""
import sys

import torch

E2M1_BOUNDS = torch.tensor([0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0])  # round-to-nearest decision points


def quantize(x, bounds):
    amax = x.abs().amax().float()
    s = amax / (6.0 * 448.0)
    blocks = x.float().view(x.shape[0], -1, 16)
    block_amax = blocks.abs().amax(dim=-1, keepdim=True)
    scale = (block_amax / (6.0 * s)).clamp(2 ** -9, 448.0).to(torch.float8_e4m3fn)
    q = blocks / (scale.float() * s)
    code = torch.bucketize(q.abs(), bounds) | ((q < 0).to(torch.int64) << 3)
    packed = (code[..., 0::2] | (code[..., 1::2] << 4)).to(torch.uint8)
    return packed.view(x.shape[0], -1), scale.view(x.shape[0], -1)


def main():
    rows, cols = (int(sys.argv[1]), int(sys.argv[2])) if len(sys.argv) > 2 else (28672, 8192)
    x = (torch.randn(rows, cols, device="cuda") * 0.02).bfloat16()
    bounds = E2M1_BOUNDS.cuda()
    for _ in range(3):
        quantize(x, bounds)
    times = []
    for _ in range(20):
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        quantize(x, bounds)
        stop.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(stop) / 1e3)
    t = sorted(times)[len(times) // 2]
    print(f"| pure PyTorch NVFP4 amax ({torch.cuda.get_device_name()}, torch {torch.__version__}) | {t * 1e6:.1f} µs "
          f"| {x.numel() * 2 / t / 1e9:.1f} GB/s of input |")


if __name__ == "__main__":
    main()
