#!/usr/bin/env python3
"""cuBLAS BF16 (through PyTorch) on the shapes and batch sizes of cuda_bench's W4A16 table, weights
rotated among copies past the L2 as there: the baseline of issue 16's product targets.
"""
import torch


def median_seconds(fn, runs=30):
    for _ in range(5):
        fn()
    times = []
    for _ in range(runs):
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        stop.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(stop) / 1e3)
    return sorted(times)[len(times) // 2]


def main():
    print(f"\n| cuBLAS BF16 ({torch.cuda.get_device_name()}, torch {torch.__version__}) | M | median time | weight stream "
          "| TFLOP/s |\n|---|---|---|---|---|")
    for n, k in [(28672, 8192), (8192, 28672), (14336, 4096), (4096, 14336)]:
        copies = max(1, (256 << 20) // (n * k * 2) + 1)
        weights = [torch.randn(n, k, device="cuda", dtype=torch.bfloat16) * 0.02 for _ in range(copies)]
        for m in (1, 16, 64, 1024):
            x = torch.randn(m, k, device="cuda", dtype=torch.bfloat16)
            state = {"next": 0}

            def run():
                torch.nn.functional.linear(x, weights[state["next"]])
                state["next"] = (state["next"] + 1) % copies

            t = median_seconds(run)
            print(f"| {n} x {k} | {m} | {t * 1e6:.1f} µs | {n * k * 2 / t / 1e12:.2f} TB/s | {2 * m * n * k / t / 1e12:.1f} |")
        del weights


if __name__ == "__main__":
    main()
