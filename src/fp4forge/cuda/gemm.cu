// The W4A16 NVFP4 products of gemm.h.
//
// Nvfp4MmaKernel (tensor cores): a block of 8 warps owns kNTiles tiles of 8 columns and 16·kMTiles
// rows of x; its warps split k by chunks of 128 (warp w takes chunks w, w + 8, ...), each keeping
// float32 accumulators in registers, and sum their partial products in shared memory in warp order
// (deterministic). Per 16-step (one NVFP4 block) a lane decodes its B operand from the reordered
// codes (mma_layout.h), multiplies it by the block scale in BF16 (exact: code × scale has at most 6
// significant bits), and issues mma.sync m16n8k16 once per row tile; the tensor scale is applied to
// the sums, which are rounded to BF16 once. The next chunk's codes load while this one computes.
#include "fp4forge/cuda/kernels.h"

#include <cuda_bf16.h>

#include "fp4forge/cuda/mma_layout.h"

namespace fp4forge::cuda {

namespace {

constexpr int kMmaWarps = 8;

__device__ __forceinline__ void Mma16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};"
               : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ uint32_t LoadPair(const __nv_bfloat16* p) { return __ldg(reinterpret_cast<const unsigned int*>(p)); }

template <int kMTiles, int kNTiles>
__global__ void __launch_bounds__(kMmaWarps * 32)
    Nvfp4MmaKernel(const __nv_bfloat16* __restrict__ x, int64_t m, int64_t k, const uint4* __restrict__ codes,
                   const uint2* __restrict__ scales, float s, int64_t n, __nv_bfloat16* __restrict__ y) {
  constexpr int kCount = kMTiles * kNTiles * 4;  // accumulators per lane
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const int64_t chunks = (k + kMmaChunk - 1) / kMmaChunk, steps = k / 16, tiles = (n + 7) / 8;
  const int64_t tile0 = blockIdx.x * int64_t{kNTiles}, row0 = blockIdx.y * int64_t{16 * kMTiles};
  // Rows of x this lane reads for its A operands (rows g and g + 8 of each row tile); nullptr past m.
  const __nv_bfloat16* rows[kMTiles][2];
#pragma unroll
  for (int mt = 0; mt < kMTiles; ++mt) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int64_t r = row0 + mt * 16 + g + 8 * h;
      rows[mt][h] = r < m ? x + r * k + 2 * t : nullptr;
    }
  }
  float acc[kCount] = {};
  uint4 next_codes[kNTiles];
  uint2 next_scales[kNTiles];
  auto load = [&](int64_t c) {
#pragma unroll
    for (int nt = 0; nt < kNTiles; ++nt) {
      const int64_t tile = (tile0 + nt < tiles ? tile0 + nt : tile0) * chunks + c;  // a missing tile repeats one
      next_codes[nt] = __ldg(codes + tile * 32 + lane);
      next_scales[nt] = __ldg(scales + tile * 8 + g);
    }
  };
  if (warp < chunks) load(warp);
  for (int64_t c = warp; c < chunks; c += kMmaWarps) {
    uint4 word[kNTiles];
    uint2 scale[kNTiles];
#pragma unroll
    for (int nt = 0; nt < kNTiles; ++nt) word[nt] = next_codes[nt], scale[nt] = next_scales[nt];
    if (c + kMmaWarps < chunks) load(c + kMmaWarps);
#pragma unroll
    for (int j = 0; j < 8; ++j) {  // 16-steps = blocks
      const int64_t step = c * 8 + j;
      if (step >= steps) break;  // the zero half of a last chunk
      uint32_t a[kMTiles][4];
#pragma unroll
      for (int mt = 0; mt < kMTiles; ++mt) {
        const int64_t k0 = step * 16;
        a[mt][0] = rows[mt][0] ? LoadPair(rows[mt][0] + k0) : 0u;
        a[mt][1] = rows[mt][1] ? LoadPair(rows[mt][1] + k0) : 0u;
        a[mt][2] = rows[mt][0] ? LoadPair(rows[mt][0] + k0 + 8) : 0u;
        a[mt][3] = rows[mt][1] ? LoadPair(rows[mt][1] + k0 + 8) : 0u;
      }
#pragma unroll
      for (int nt = 0; nt < kNTiles; ++nt) {
        const uint32_t w = reinterpret_cast<const uint32_t*>(&word[nt])[j / 2];
        uint32_t pairs[4];
        DecodeE2M1ToBF16x2(w, pairs);  // pairs 0, 1: block j if j is even; 2, 3: block j if odd
        const uint32_t scale_code = (j < 4 ? scale[nt].x >> (8 * j) : scale[nt].y >> (8 * (j - 4))) & 0xFFu;
        const __nv_bfloat162 d = __float2bfloat162_rn(DecodeE4M3Scale(scale_code));
        const __nv_bfloat162 b0 = __hmul2(*reinterpret_cast<const __nv_bfloat162*>(&pairs[2 * (j % 2)]), d);
        const __nv_bfloat162 b1 = __hmul2(*reinterpret_cast<const __nv_bfloat162*>(&pairs[2 * (j % 2) + 1]), d);
#pragma unroll
        for (int mt = 0; mt < kMTiles; ++mt) {
          Mma16816(*reinterpret_cast<float(*)[4]>(&acc[(mt * kNTiles + nt) * 4]), a[mt],
                   *reinterpret_cast<const uint32_t*>(&b0), *reinterpret_cast<const uint32_t*>(&b1));
        }
      }
    }
  }
  // The warps' partial sums, 16 accumulators per lane at a time, summed in warp order.
  __shared__ float partial[kMmaWarps][16][32];
#pragma unroll
  for (int base = 0; base < kCount; base += 16) {
#pragma unroll
    for (int v = 0; v < 16; ++v) {
      if (base + v < kCount) partial[warp][v][lane] = acc[base + v];
    }
    __syncthreads();
    for (int item = threadIdx.x; item < 16 * 32; item += kMmaWarps * 32) {
      const int v = item / 32, l = item % 32, index = base + v;
      if (index >= kCount) continue;
      float sum = 0.0f;
#pragma unroll
      for (int w = 0; w < kMmaWarps; ++w) sum += partial[w][v][l];
      const int mt = index / (kNTiles * 4), nt = index / 4 % kNTiles, i = index % 4;
      const int64_t row = row0 + mt * 16 + l / 4 + (i >= 2 ? 8 : 0), col = (tile0 + nt) * 8 + 2 * (l % 4) + i % 2;
      if (row < m && col < n) y[row * n + col] = __float2bfloat16(sum * s);
    }
    __syncthreads();
  }
}

template <int kMTiles, int kNTiles>
cudaError_t LaunchMma(const void* x, int64_t m, int64_t k, const uint8_t* codes, const uint8_t* scales, float s, int64_t n,
                      void* y, cudaStream_t stream) {
  const dim3 grid(static_cast<unsigned>(((n + 7) / 8 + kNTiles - 1) / kNTiles), static_cast<unsigned>((m + 16 * kMTiles - 1) / (16 * kMTiles)));
  Nvfp4MmaKernel<kMTiles, kNTiles><<<grid, kMmaWarps * 32, 0, stream>>>(
      static_cast<const __nv_bfloat16*>(x), m, k, reinterpret_cast<const uint4*>(codes), reinterpret_cast<const uint2*>(scales),
      s, n, static_cast<__nv_bfloat16*>(y));
  return cudaGetLastError();
}

}  // namespace

cudaError_t LaunchNvfp4Mma(const void* x, int64_t m, int64_t k, const uint8_t* codes, const uint8_t* scales,
                           float tensor_scale, int64_t n, void* y, cudaStream_t stream) {
  if (m <= 8) return LaunchMma<1, 1>(x, m, k, codes, scales, tensor_scale, n, y, stream);
  if (m <= 16) return LaunchMma<1, 4>(x, m, k, codes, scales, tensor_scale, n, y, stream);
  if (m <= 32) return LaunchMma<2, 4>(x, m, k, codes, scales, tensor_scale, n, y, stream);
  return LaunchMma<4, 4>(x, m, k, codes, scales, tensor_scale, n, y, stream);
}

}  // namespace fp4forge::cuda
