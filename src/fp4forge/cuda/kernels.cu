// The kernels of cuda/quantize.h and their launchers, which report CUDA's status and leave errors
// and everything else of fp4forge to quantize.cc (this file sees only the codecs' constexpr
// functions and the formats' constants, compiled for the device).
//
// Built with --fmad=false: every product and sum rounds on its own, as in the reference (an fma
// would round once where the reference rounds twice). Divisions are IEEE (nvcc's default -prec-div).
#include "fp4forge/cuda/kernels.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cfloat>

#include "fp4forge/codec/e4m3.h"
#include "fp4forge/cuda/fast_exact.h"
#include "fp4forge/codec/ue8m0.h"
#include "fp4forge/format/mxfp4.h"
#include "fp4forge/format/nvfp4.h"

namespace fp4forge::cuda {

namespace {

// ---- Loads: a block's values as float32, in 16-byte loads --------------------------------------

template <typename T>
__device__ __forceinline__ float ToFloat(T v);
template <>
__device__ __forceinline__ float ToFloat(float v) { return v; }
template <>
__device__ __forceinline__ float ToFloat(__nv_bfloat16 v) { return __bfloat162float(v); }
template <>
__device__ __forceinline__ float ToFloat(__half v) { return __half2float(v); }

template <typename T, int N>
__device__ __forceinline__ void LoadBlock(const T* __restrict__ p, float (&v)[N]) {
  constexpr int kPerLoad = 16 / sizeof(T);
  const uint4* words = reinterpret_cast<const uint4*>(p);
#pragma unroll
  for (int w = 0; w < N / kPerLoad; ++w) {
    const uint4 word = __ldg(words + w);
    const T* values = reinterpret_cast<const T*>(&word);
#pragma unroll
    for (int k = 0; k < kPerLoad; ++k) v[w * kPerLoad + k] = ToFloat(values[k]);
  }
}

template <int N>
__device__ __forceinline__ float BlockAmax(const float (&v)[N]) {
  float amax = 0.0f;
#pragma unroll
  for (int k = 0; k < N; ++k) amax = fmaxf(amax, fabsf(v[k]));
  return amax;
}

// Nvfp4AmaxScaleCode, given fl(target · S).
__device__ __forceinline__ uint8_t AmaxScaleCode(float block_amax, float target_times_scale) {
  float s = block_amax / target_times_scale;
  if (s == 0.0f) s = 1.0f;
  return EncodeE4M3(fminf(fmaxf(s, kE4M3MinSubnormal), kE4M3Max));
}

// Nvfp4BlockSquaredError.
__device__ __forceinline__ float BlockSquaredError(const float (&v)[kNvfp4BlockSize], uint8_t code, float s) {
  const float d = DecodeE4M3(code) * s;
  const float r = fminf(1.0f / d, FLT_MAX);
  float sse = 0.0f;
#pragma unroll
  for (int k = 0; k < kNvfp4BlockSize; ++k) {
    const float q = fabsf(v[k]) * r;
    const float err = RoundE2M1Magnitude(q).value - q;
    sse += err * err;
  }
  return sse * (d * d);
}

// One thread per block of 16: its scale code by the rule, then its 16 codes (x / fl(e4m3 · S)).
template <typename T, Nvfp4ScaleRule kRule>
__global__ void QuantizeNvfp4Kernel(const T* __restrict__ x, int64_t num_blocks, float s, uint8_t* __restrict__ codes,
                                    uint8_t* __restrict__ scales) {
  const float six_s = 6.0f * s, four_s = 4.0f * s;
  for (int64_t b = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; b < num_blocks; b += int64_t{gridDim.x} * blockDim.x) {
    float v[kNvfp4BlockSize];
    LoadBlock(x + b * kNvfp4BlockSize, v);
    const float amax = BlockAmax(v);
    uint8_t code = AmaxScaleCode(amax, six_s);
    if constexpr (kRule == Nvfp4ScaleRule::kMse) {
      const int amax_code = code;
      float best = BlockSquaredError(v, code, s);
#pragma unroll
      for (int offset = -kNvfp4MseCodesBelow; offset <= kNvfp4MseCodesAbove; ++offset) {  // reference order
        if (offset == 0) continue;
        const uint8_t c = static_cast<uint8_t>(min(max(amax_code + offset, 1), int{kE4M3MaxCode}));
        const float sse = BlockSquaredError(v, c, s);
        if (sse < best) {
          best = sse;
          code = c;
        }
      }
    } else if constexpr (kRule == Nvfp4ScaleRule::kFourOverSix) {
      const uint8_t four = AmaxScaleCode(amax, four_s);
      if (BlockSquaredError(v, four, s) < BlockSquaredError(v, code, s)) code = four;
    }
    const float divisor = DecodeE4M3(code) * s, reciprocal = 1.0f / divisor;
    uint32_t packed[2] = {0, 0};
#pragma unroll
    for (int k = 0; k < kNvfp4BlockSize; ++k) {
      const float q = Divide(v[k], divisor, reciprocal);  // EncodeE2M1(v[k] / divisor):
      const uint32_t code4 = RoundE2M1Magnitude(fabsf(q)).code | (q < 0.0f ? 0x8u : 0x0u);
      packed[k / 8] |= code4 << (4 * (k % 8));
    }
    reinterpret_cast<uint2*>(codes)[b] = make_uint2(packed[0], packed[1]);
    scales[b] = code;
  }
}

// One thread per block of 32: the OCP scale 2^(floor(log2 amax) - 2), then x / 2^k.
template <typename T>
__global__ void QuantizeMxfp4Kernel(const T* __restrict__ x, int64_t num_blocks, uint8_t* __restrict__ codes,
                                    uint8_t* __restrict__ scales) {
  for (int64_t b = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; b < num_blocks; b += int64_t{gridDim.x} * blockDim.x) {
    float v[kMxfp4BlockSize];
    LoadBlock(x + b * kMxfp4BlockSize, v);
    const int exponent = static_cast<int>((__float_as_uint(BlockAmax(v)) >> 23) & 0xFF) - 127;
    const uint8_t code = EncodeUE8M0Exponent(min(max(exponent - 2, -127), 127));
    const float d = DecodeUE8M0(code), reciprocal = 1.0f / d;
    uint32_t packed[4] = {0, 0, 0, 0};
#pragma unroll
    for (int k = 0; k < kMxfp4BlockSize; ++k) {
      const float q = Divide(v[k], d, reciprocal);  // EncodeE2M1(v[k] / d)
      packed[k / 8] |= uint32_t{RoundE2M1Magnitude(fabsf(q)).code | (q < 0.0f ? 0x8u : 0x0u)} << (4 * (k % 8));
    }
    reinterpret_cast<uint4*>(codes)[b] = make_uint4(packed[0], packed[1], packed[2], packed[3]);
    scales[b] = code;
  }
}

// max |x| bits: 16-byte loads, a warp's maximum by __reduce_max_sync, one atomic per warp.
template <typename T>
__global__ void AmaxBitsKernel(const T* __restrict__ x, int64_t n, uint32_t* __restrict__ amax_bits) {
  constexpr int kPerLoad = 16 / sizeof(T);
  uint32_t m = 0;
  const int64_t words = n / kPerLoad;
  for (int64_t w = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; w < words; w += int64_t{gridDim.x} * blockDim.x) {
    const uint4 word = __ldg(reinterpret_cast<const uint4*>(x) + w);
    const T* values = reinterpret_cast<const T*>(&word);
#pragma unroll
    for (int k = 0; k < kPerLoad; ++k) m = max(m, __float_as_uint(ToFloat(values[k])) & 0x7FFFFFFFu);
  }
  for (int64_t i = words * kPerLoad + blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    m = max(m, __float_as_uint(ToFloat(x[i])) & 0x7FFFFFFFu);
  }
  m = __reduce_max_sync(0xFFFFFFFFu, m);
  if (threadIdx.x % 32 == 0) atomicMax(amax_bits, m);
}

constexpr int kThreads = 256;

int Grid(int64_t items) {
  int device = 0, sms = 0;
  if (cudaGetDevice(&device) != cudaSuccess || cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device) != cudaSuccess) {
    sms = 1;
  }
  const int64_t blocks = (items + kThreads - 1) / kThreads;
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(blocks, int64_t{sms} * 16)));  // grid-stride beyond
}

// Calls fn(T*) with x typed by its dtype.
template <typename Fn>
void WithDType(DType dtype, const void* x, Fn&& fn) {
  switch (dtype) {
    case DType::kBF16: return fn(static_cast<const __nv_bfloat16*>(x));
    case DType::kF16: return fn(static_cast<const __half*>(x));
    case DType::kF32: return fn(static_cast<const float*>(x));
  }
}

}  // namespace

cudaError_t LaunchQuantizeNvfp4(const void* x, DType dtype, int64_t num_blocks, Nvfp4ScaleRule rule, float tensor_scale,
                                uint8_t* codes, uint8_t* scales, cudaStream_t stream) {
  WithDType(dtype, x, [&](const auto* typed) {
    using T = std::remove_cv_t<std::remove_pointer_t<decltype(typed)>>;
    const int grid = Grid(num_blocks);
    if (rule == Nvfp4ScaleRule::kMse) {
      QuantizeNvfp4Kernel<T, Nvfp4ScaleRule::kMse><<<grid, kThreads, 0, stream>>>(typed, num_blocks, tensor_scale, codes, scales);
    } else if (rule == Nvfp4ScaleRule::kFourOverSix) {
      QuantizeNvfp4Kernel<T, Nvfp4ScaleRule::kFourOverSix><<<grid, kThreads, 0, stream>>>(typed, num_blocks, tensor_scale, codes, scales);
    } else {
      QuantizeNvfp4Kernel<T, Nvfp4ScaleRule::kAmax><<<grid, kThreads, 0, stream>>>(typed, num_blocks, tensor_scale, codes, scales);
    }
  });
  return cudaGetLastError();
}

cudaError_t LaunchQuantizeMxfp4(const void* x, DType dtype, int64_t num_blocks, uint8_t* codes, uint8_t* scales,
                                cudaStream_t stream) {
  WithDType(dtype, x, [&](const auto* typed) {
    QuantizeMxfp4Kernel<<<Grid(num_blocks), kThreads, 0, stream>>>(typed, num_blocks, codes, scales);
  });
  return cudaGetLastError();
}

cudaError_t LaunchTensorAmaxBits(const void* x, DType dtype, int64_t n, uint32_t* amax_bits, cudaStream_t stream) {
  if (const cudaError_t status = cudaMemsetAsync(amax_bits, 0, sizeof(uint32_t), stream); status != cudaSuccess) return status;
  WithDType(dtype, x, [&](const auto* typed) {
    AmaxBitsKernel<<<Grid(n / static_cast<int64_t>(16 / sizeof(*typed)) + 1), kThreads, 0, stream>>>(typed, n, amax_bits);
  });
  return cudaGetLastError();
}

}  // namespace fp4forge::cuda
