#include "fp4forge/cuda/gemm.h"

#include "fp4forge/base/error.h"
#include "fp4forge/cuda/kernels.h"
#include "fp4forge/cuda/mma_layout.h"

namespace fp4forge::cuda {

namespace {

void CheckShape(int64_t m, int64_t n, int64_t k) {
  if (m < 1 || n < 1 || k < 16 || k % 16 != 0) {
    Fail(ErrorCode::kInvalidArgument, "[cuda] NVFP4 product of [{}, {}] x [{}, {}]ᵀ: m, n must be positive and k a positive multiple of 16",
         m, k, n, k);
  }
}

}  // namespace

Nvfp4MmaWeights ReorderNvfp4ForMma(std::span<const uint8_t> codes, std::span<const uint8_t> scales, int64_t n, int64_t k) {
  CheckShape(1, n, k);
  const int64_t blocks = k / 16;
  if (std::ssize(codes) != n * k / 2 || std::ssize(scales) != n * blocks) {
    Fail(ErrorCode::kInvalidArgument, "[cuda] NVFP4 weight [{}, {}]: expected {} code and {} scale bytes, got {} and {}", n, k,
         n * k / 2, n * blocks, codes.size(), scales.size());
  }
  const int64_t chunks = (k + kMmaChunk - 1) / kMmaChunk, tiles = (n + 7) / 8;
  Nvfp4MmaWeights out{.codes = std::vector<uint8_t>(tiles * chunks * kMmaTileCodeBytes),
                      .scales = std::vector<uint8_t>(tiles * chunks * kMmaTileScaleBytes)};
  const int64_t row_bytes = k / 2;
  for (int64_t col = 0; col < n; ++col) {
    const int64_t g = col % 8;
    for (int64_t b = 0; b < blocks; ++b) {
      out.scales[(col / 8 * chunks + b / 8) * kMmaTileScaleBytes + 8 * g + b % 8] = scales[col * blocks + b];
    }
    for (int64_t byte = 0; byte < row_bytes; ++byte) {  // code byte 16t + i of chunk c: lane (g, t)'s byte i
      const int64_t c = byte / 64, t = byte % 64 / 16, i = byte % 16;
      out.codes[((col / 8 * chunks + c) * 32 + 4 * g + t) * 16 + i] = codes[col * row_bytes + byte];
    }
  }
  return out;
}

void Nvfp4GemmOnDevice(const void* x, int64_t m, int64_t k, const uint8_t* codes, const uint8_t* scales,
                       float tensor_scale, int64_t n, void* y, void* stream) {
  CheckShape(m, n, k);
  if (reinterpret_cast<uintptr_t>(x) % 16 != 0 || reinterpret_cast<uintptr_t>(codes) % 16 != 0 ||
      reinterpret_cast<uintptr_t>(scales) % 2 != 0) {
    Fail(ErrorCode::kInvalidArgument, "[cuda] NVFP4 product: x and the codes must be 16-byte aligned, the scales 2-byte aligned");
  }
  const cudaError_t status = LaunchNvfp4Mma(x, m, k, codes, scales, tensor_scale, n, y, static_cast<cudaStream_t>(stream));
  if (status != cudaSuccess) Fail(ErrorCode::kIo, "[cuda] Nvfp4MmaKernel: {}", cudaGetErrorString(status));
}

}  // namespace fp4forge::cuda
