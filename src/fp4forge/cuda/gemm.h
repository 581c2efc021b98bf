// Weight-only NVFP4 products on the GPU (W4A16): Y[M, N] = X[M, K] · dequant(W)[N, K]ᵀ with BF16
// activations and NVFP4 weights as our checkpoints store them (codes [N, K/2], E4M3 block scales
// [N, K/16], the float32 tensor scale S), decoded in registers: no BF16 copy of W is ever written.
// This header needs no CUDA headers.
#pragma once

#include <cstdint>

namespace fp4forge::cuda {

// All pointers are device memory: x BF16 [m, k] (row-major), y BF16 [m, n]; k a multiple of 64,
// codes 16-byte aligned. Queued on `stream` (a cudaStream_t; nullptr = the default stream). Float32
// accumulation, y rounded to BF16 once. Throws Error(kInvalidArgument) for a k that is not a multiple
// of 64, Error(kIo) on a CUDA failure.
// Batches of up to 8 rows of x are done by one pass over W per batch: built for decode (m <= 8),
// correct but slow for large m (no tensor cores yet).
void Nvfp4GemmOnDevice(const void* x, int64_t m, int64_t k, const uint8_t* codes, const uint8_t* scales,
                       float tensor_scale, int64_t n, void* y, void* stream);

}  // namespace fp4forge::cuda
