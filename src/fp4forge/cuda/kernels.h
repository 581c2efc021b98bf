// Launchers of the GPU kernels (kernels.cu, gemm.cu), for quantize.cc and gemm.cc: they queue the work and return
// CUDA's status. Inputs as cuda/quantize.h describes them; num_blocks = rows * cols / block size.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "fp4forge/base/dtype.h"
#include "fp4forge/format/nvfp4.h"

namespace fp4forge::cuda {

cudaError_t LaunchQuantizeNvfp4(const void* x, DType dtype, int64_t num_blocks, Nvfp4ScaleRule rule, float tensor_scale,
                                uint8_t* codes, uint8_t* scales, cudaStream_t stream);
cudaError_t LaunchQuantizeMxfp4(const void* x, DType dtype, int64_t num_blocks, uint8_t* codes, uint8_t* scales,
                                cudaStream_t stream);
// codes and scales in the layout of mma_layout.h (ReorderNvfp4ForMma).
cudaError_t LaunchNvfp4Mma(const void* x, int64_t m, int64_t k, const uint8_t* codes, const uint8_t* scales,
                           float tensor_scale, int64_t n, void* y, cudaStream_t stream);
cudaError_t LaunchTensorAmaxBits(const void* x, DType dtype, int64_t n, uint32_t* amax_bits, cudaStream_t stream);

}  // namespace fp4forge::cuda
