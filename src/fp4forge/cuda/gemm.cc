#include "fp4forge/cuda/gemm.h"

#include "fp4forge/base/error.h"
#include "fp4forge/cuda/kernels.h"

namespace fp4forge::cuda {

void Nvfp4GemmOnDevice(const void* x, int64_t m, int64_t k, const uint8_t* codes, const uint8_t* scales,
                       float tensor_scale, int64_t n, void* y, void* stream) {
  if (m < 1 || n < 1 || k < 64 || k % 64 != 0) {
    Fail(ErrorCode::kInvalidArgument, "[cuda] NVFP4 product of [{}, {}] x [{}, {}]ᵀ: k must be a positive multiple of 64", m, k,
         n, k);
  }
  const cudaError_t status = LaunchNvfp4Gemm(x, m, k, codes, scales, tensor_scale, n, y, static_cast<cudaStream_t>(stream));
  if (status != cudaSuccess) Fail(ErrorCode::kIo, "[cuda] Nvfp4GemvKernel: {}", cudaGetErrorString(status));
}

}  // namespace fp4forge::cuda
