// The W4A16 NVFP4 product of gemm.h on the tensor cores: Yᵀ = W · Xᵀ by mma.sync m16n8k16 (BF16,
// float32 accumulators) with the weights as the A operand (16 columns of W) and x as B (8 tokens),
// so that each decoded weight feeds kTokenTiles products and nothing is wasted at batch 1 but the
// B operand's unused tokens.
//
// A block of 8 warps owns kColTiles tiles of 16 columns (two of the layout's 8-column tiles each)
// and 8·kTokenTiles tokens. Its warps split k by chunks of 128 (warp w takes chunks w, w + 8, ...),
// each keeping its sums in registers, and add them up in shared memory in warp order
// (deterministic). Within a chunk, lane t of a quad owns 32 consecutive k (mma_layout.h): it loads
// x as 4 × 16 bytes per token and its codes as 16 bytes per 8-column tile. Per 16-step it decodes 4
// codes of each of its two columns, multiplies them by their block's scale in BF16 (exact: code ×
// scale has at most 6 significant bits) and issues the mma once per token tile. The tensor scale is
// applied to the sums, which are rounded to BF16 once. The codes of the next kDepth chunks are in
// flight while a chunk computes; they bypass L1, which keeps x.
#include "fp4forge/cuda/kernels.h"

#include <cuda_bf16.h>

#include "fp4forge/cuda/mma_layout.h"

namespace fp4forge::cuda {

namespace {

constexpr int kMmaWarps = 8;
constexpr int kDepth = 2;  // chunks of codes in flight per warp, beyond the one computing

__device__ __forceinline__ void Mma16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};"
               : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Weights are read once: past L1 (no allocation there), so that x stays in it.
__device__ __forceinline__ uint4 LoadStreamed(const uint4* p) {
  uint4 v;
  asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];" : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p));
  return v;
}
__device__ __forceinline__ uint32_t LoadStreamed(const uint16_t* p) {
  unsigned short v;
  asm volatile("ld.global.nc.L1::no_allocate.u16 %0, [%1];" : "=h"(v) : "l"(p));
  return v;
}

__device__ __forceinline__ uint32_t ScaledPair(uint32_t pair, __nv_bfloat162 scale) {
  const __nv_bfloat162 v = __hmul2(*reinterpret_cast<const __nv_bfloat162*>(&pair), scale);
  return *reinterpret_cast<const uint32_t*>(&v);
}

template <int kColTiles, int kTokenTiles>
__global__ void __launch_bounds__(kMmaWarps * 32)
    Nvfp4MmaKernel(const __nv_bfloat16* __restrict__ x, int64_t m, int64_t k, const uint4* __restrict__ codes,
                   const uint16_t* __restrict__ scales, float s, int64_t n, __nv_bfloat16* __restrict__ y) {
  constexpr int kTiles8 = 2 * kColTiles;  // the layout's 8-column tiles of the block
  constexpr int kCount = kColTiles * kTokenTiles * 4;  // accumulators per lane
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const int64_t chunks = (k + kMmaChunk - 1) / kMmaChunk, tiles = (n + 7) / 8;
  const int64_t tile0 = blockIdx.x * int64_t{kTiles8}, token0 = blockIdx.y * int64_t{8 * kTokenTiles};
  // The tokens whose B operands this lane holds (g of each token tile), at its k offset 32t; nullptr past m.
  const uint4* tokens[kTokenTiles];
#pragma unroll
  for (int tt = 0; tt < kTokenTiles; ++tt) {
    const int64_t r = token0 + 8 * tt + g;
    tokens[tt] = r < m ? reinterpret_cast<const uint4*>(x + r * k + 32 * t) : nullptr;
  }
  float acc[kCount] = {};
  uint4 ring_codes[kDepth][kTiles8];
  uint32_t ring_scales[kDepth][kTiles8];
  auto load = [&](int d, int64_t c) {
#pragma unroll
    for (int i = 0; i < kTiles8; ++i) {
      const int64_t tile = (tile0 + i < tiles ? tile0 + i : tile0) * chunks + c;  // a missing tile repeats one
      ring_codes[d][i] = LoadStreamed(codes + tile * 32 + lane);
      ring_scales[d][i] = LoadStreamed(scales + tile * 32 + 4 * g + t);  // blocks 2t, 2t + 1 of column g
    }
  };
#pragma unroll
  for (int d = 0; d < kDepth; ++d) {
    if (warp + d * kMmaWarps < chunks) load(d, warp + d * kMmaWarps);
  }
  for (int64_t c = warp; c < chunks; c += kMmaWarps) {
    uint4 word[kTiles8];
    __nv_bfloat162 scale[kTiles8][2];  // the lane's two blocks
#pragma unroll
    for (int i = 0; i < kTiles8; ++i) {
      word[i] = ring_codes[0][i];
      scale[i][0] = __float2bfloat162_rn(DecodeE4M3Scale(ring_scales[0][i] & 0xFFu));
      scale[i][1] = __float2bfloat162_rn(DecodeE4M3Scale(ring_scales[0][i] >> 8));
    }
#pragma unroll
    for (int d = 0; d + 1 < kDepth; ++d) {
#pragma unroll
      for (int i = 0; i < kTiles8; ++i) ring_codes[d][i] = ring_codes[d + 1][i], ring_scales[d][i] = ring_scales[d + 1][i];
    }
    if (c + kDepth * kMmaWarps < chunks) load(kDepth - 1, c + kDepth * kMmaWarps);
    const int64_t k_lane = c * kMmaChunk + 32 * t;
#pragma unroll
    for (int q = 0; q < 4; ++q) {  // k 8q .. 8q + 7 of the lane: 16-steps 2q and 2q + 1
      uint4 xq[kTokenTiles] = {};  // zero past m and past k (where the codes and scales are zero too)
#pragma unroll
      for (int tt = 0; tt < kTokenTiles; ++tt) {
        if (tokens[tt] != nullptr && k_lane + 8 * q < k) xq[tt] = __ldg(tokens[tt] + c * (kMmaChunk / 8) + q);
      }
      uint32_t pairs[kTiles8][4];
#pragma unroll
      for (int i = 0; i < kTiles8; ++i) DecodeE2M1ToBF16x2(reinterpret_cast<const uint32_t*>(&word[i])[q], pairs[i]);
#pragma unroll
      for (int half = 0; half < 2; ++half) {  // k 8q + 4·half + {0, 1} and + {2, 3}
#pragma unroll
        for (int ct = 0; ct < kColTiles; ++ct) {
          const int lo = 2 * ct, hi = 2 * ct + 1;  // columns g and g + 8 of the 16
          const uint32_t a[4] = {ScaledPair(pairs[lo][2 * half], scale[lo][q / 2]), ScaledPair(pairs[hi][2 * half], scale[hi][q / 2]),
                                 ScaledPair(pairs[lo][2 * half + 1], scale[lo][q / 2]),
                                 ScaledPair(pairs[hi][2 * half + 1], scale[hi][q / 2])};
#pragma unroll
          for (int tt = 0; tt < kTokenTiles; ++tt) {
            const uint32_t* b = reinterpret_cast<const uint32_t*>(&xq[tt]);
            Mma16816(*reinterpret_cast<float(*)[4]>(&acc[(ct * kTokenTiles + tt) * 4]), a, b[2 * half], b[2 * half + 1]);
          }
        }
      }
    }
  }
  // The warps' partial sums, 16 accumulators per lane at a time, summed in warp order. Accumulator
  // i of a product: column g + 8·(i / 2) of its 16, token 2t + i % 2 of its 8.
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
      const int ct = index / (kTokenTiles * 4), tt = index / 4 % kTokenTiles, i = index % 4;
      const int64_t token = token0 + 8 * tt + 2 * (l % 4) + i % 2, col = (tile0 + 2 * ct + i / 2) * 8 + l / 4;
      if (token < m && col < n) y[token * n + col] = __float2bfloat16(sum * s);
    }
    __syncthreads();
  }
}

template <int kColTiles, int kTokenTiles>
cudaError_t LaunchMma(const void* x, int64_t m, int64_t k, const uint8_t* codes, const uint8_t* scales, float s, int64_t n,
                      void* y, cudaStream_t stream) {
  const dim3 grid(static_cast<unsigned>((n + 16 * kColTiles - 1) / (16 * kColTiles)),
                  static_cast<unsigned>((m + 8 * kTokenTiles - 1) / (8 * kTokenTiles)));
  Nvfp4MmaKernel<kColTiles, kTokenTiles><<<grid, kMmaWarps * 32, 0, stream>>>(
      static_cast<const __nv_bfloat16*>(x), m, k, reinterpret_cast<const uint4*>(codes), reinterpret_cast<const uint16_t*>(scales),
      s, n, static_cast<__nv_bfloat16*>(y));
  return cudaGetLastError();
}

}  // namespace

cudaError_t LaunchNvfp4Mma(const void* x, int64_t m, int64_t k, const uint8_t* codes, const uint8_t* scales,
                           float tensor_scale, int64_t n, void* y, cudaStream_t stream) {
  if (m <= 8) return LaunchMma<1, 1>(x, m, k, codes, scales, tensor_scale, n, y, stream);
  if (m <= 16) return LaunchMma<1, 2>(x, m, k, codes, scales, tensor_scale, n, y, stream);
  if (m <= 32) return LaunchMma<1, 4>(x, m, k, codes, scales, tensor_scale, n, y, stream);
  return LaunchMma<1, 8>(x, m, k, codes, scales, tensor_scale, n, y, stream);
}

}  // namespace fp4forge::cuda
