// Weight-only NVFP4 products on the GPU (W4A16): Y[M, N] = X[M, K] · dequant(W)[N, K]ᵀ with BF16
// activations and NVFP4 weights (E2M1 codes, E4M3 block scales, the float32 tensor scale S), decoded
// in registers on the tensor cores: no BF16 copy of W is ever written. The codes and block scales
// are reordered once, on the host, when the weights are loaded (layout in mma_layout.h).
// This header needs no CUDA headers.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace fp4forge::cuda {

// W's codes and block scales in the kernel's layout, ready to be copied to the device.
struct Nvfp4MmaWeights {
  std::vector<uint8_t> codes;
  std::vector<uint8_t> scales;
};

// From the checkpoint's layout (codes [n, k/2], low nibble first; E4M3 scales [n, k/16]), k a
// multiple of 16. Throws Error(kInvalidArgument) for a k that is not, or for spans of other sizes.
Nvfp4MmaWeights ReorderNvfp4ForMma(std::span<const uint8_t> codes, std::span<const uint8_t> scales, int64_t n, int64_t k);

// All pointers are device memory: x BF16 [m, k] (row-major, 16-byte aligned), y BF16 [m, n]; codes and
// scales as ReorderNvfp4ForMma made them, 16- and 2-byte aligned. Queued on `stream` (a cudaStream_t;
// nullptr = the default stream). Exact products, float32 accumulation, y rounded to BF16 once.
// Throws Error(kInvalidArgument) for bad sizes or alignments, Error(kIo) on a CUDA failure.
void Nvfp4GemmOnDevice(const void* x, int64_t m, int64_t k, const uint8_t* codes, const uint8_t* scales,
                       float tensor_scale, int64_t n, void* y, void* stream);

}  // namespace fp4forge::cuda
