// The W4A16 NVFP4 product of gemm.h for a few rows of x: one warp per output column n (a row of W).
// Each lane takes 32 consecutive k at a time (16 bytes of codes, two block scales), four such loads
// in flight, and accumulates kRows dot products in float32; a warp shuffle sums the lanes.
#include "fp4forge/cuda/kernels.h"

#include <cuda_bf16.h>

#include "fp4forge/codec/e4m3.h"

namespace fp4forge::cuda {

namespace {

constexpr int kWarpsPerBlock = 4;
constexpr int kUnroll = 4;  // 16-byte code loads in flight per lane

__constant__ float kE2M1[16] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f,
                                -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f};

template <int kRows>
__global__ void __launch_bounds__(kWarpsPerBlock * 32)
    Nvfp4GemvKernel(const __nv_bfloat16* __restrict__ x, int64_t m, int64_t k, const uint8_t* __restrict__ codes,
                    const uint8_t* __restrict__ scales, float s, int64_t n, __nv_bfloat16* __restrict__ y) {
  // Byte -> its two values (low nibble first), in shared memory: one 8-byte load decodes a byte.
  __shared__ float2 pairs[256];
  for (int i = threadIdx.x; i < 256; i += blockDim.x) pairs[i] = make_float2(kE2M1[i & 0xF], kE2M1[i >> 4]);
  __syncthreads();
  const int lane = threadIdx.x % 32;
  const int64_t col = blockIdx.x * int64_t{kWarpsPerBlock} + threadIdx.x / 32;
  if (col >= n) return;
  const uint4* row_codes = reinterpret_cast<const uint4*>(codes + col * (k / 2));
  const uint16_t* row_scales = reinterpret_cast<const uint16_t*>(scales + col * (k / 16));
  float acc[kRows] = {};
  const int64_t chunks = k / 32;  // 32 values: 16 bytes of codes, 2 scales
  for (int64_t c0 = lane; c0 < chunks; c0 += 32 * kUnroll) {
    uint4 word[kUnroll];
    uint16_t scale_pair[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int64_t c = c0 + u * 32;
      if (c < chunks) {
        word[u] = __ldg(row_codes + c);
        scale_pair[u] = __ldg(row_scales + c);
      }
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int64_t c = c0 + u * 32;
      if (c >= chunks) break;
      const uint8_t* bytes = reinterpret_cast<const uint8_t*>(&word[u]);
#pragma unroll
      for (int half = 0; half < 2; ++half) {  // two blocks of 16
        const float d = DecodeE4M3(static_cast<uint8_t>(scale_pair[u] >> (8 * half))) * s;
        float w[16];
#pragma unroll
        for (int b = 0; b < 8; ++b) {
          const float2 p = pairs[bytes[half * 8 + b]];
          w[2 * b] = p.x;
          w[2 * b + 1] = p.y;
        }
#pragma unroll
        for (int r = 0; r < kRows; ++r) {
          if (r >= m) break;
          const uint4* xr = reinterpret_cast<const uint4*>(x + r * k + c * 32 + half * 16);
          const uint4 xa = __ldg(xr), xb = __ldg(xr + 1);
          const __nv_bfloat162* xv[2] = {reinterpret_cast<const __nv_bfloat162*>(&xa),
                                         reinterpret_cast<const __nv_bfloat162*>(&xb)};
          float sum = 0.0f;
#pragma unroll
          for (int j = 0; j < 8; ++j) {
            const float2 xf = __bfloat1622float2(xv[j / 4][j % 4]);
            sum = fmaf(w[2 * j], xf.x, sum);
            sum = fmaf(w[2 * j + 1], xf.y, sum);
          }
          acc[r] = fmaf(sum, d, acc[r]);
        }
      }
    }
  }
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
#pragma unroll
    for (int offset = 16; offset > 0; offset /= 2) acc[r] += __shfl_xor_sync(0xFFFFFFFFu, acc[r], offset);
    if (lane == 0 && r < m) y[r * n + col] = __float2bfloat16(acc[r]);
  }
}

}  // namespace

cudaError_t LaunchNvfp4Gemm(const void* x, int64_t m, int64_t k, const uint8_t* codes, const uint8_t* scales,
                            float tensor_scale, int64_t n, void* y, cudaStream_t stream) {
  const auto* xb = static_cast<const __nv_bfloat16*>(x);
  auto* yb = static_cast<__nv_bfloat16*>(y);
  const unsigned grid = static_cast<unsigned>((n + kWarpsPerBlock - 1) / kWarpsPerBlock);
  for (int64_t r = 0; r < m; r += 8) {  // up to 8 rows of x per pass over W
    const int64_t rows = std::min<int64_t>(8, m - r);
    const __nv_bfloat16* xr = xb + r * k;
    __nv_bfloat16* yr = yb + r * n;
    if (rows == 1) {
      Nvfp4GemvKernel<1><<<grid, kWarpsPerBlock * 32, 0, stream>>>(xr, rows, k, codes, scales, tensor_scale, n, yr);
    } else if (rows <= 2) {
      Nvfp4GemvKernel<2><<<grid, kWarpsPerBlock * 32, 0, stream>>>(xr, rows, k, codes, scales, tensor_scale, n, yr);
    } else if (rows <= 4) {
      Nvfp4GemvKernel<4><<<grid, kWarpsPerBlock * 32, 0, stream>>>(xr, rows, k, codes, scales, tensor_scale, n, yr);
    } else {
      Nvfp4GemvKernel<8><<<grid, kWarpsPerBlock * 32, 0, stream>>>(xr, rows, k, codes, scales, tensor_scale, n, yr);
    }
    if (const cudaError_t status = cudaGetLastError(); status != cudaSuccess) return status;
  }
  return cudaSuccess;
}

}  // namespace fp4forge::cuda
