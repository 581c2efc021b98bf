// The W4A16 product against a float64 product of the dequantized weights, for m from 1 to 4096 and
// shapes with a half last chunk of k and n not a multiple of 8. Products of code × scale are exact
// and sums are float32, so the error is y's rounding to BF16: at most 2^-8 of each |y| (8
// significant bits), plus float32 accumulation, far below 1e-4 of the norm here. No NaN, every
// element written (the output is poisoned with NaN first). Skipped without a GPU.
#include "fp4forge/cuda/gemm.h"

#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "fp4forge/codec/half.h"
#include "fp4forge/cuda/quantize.h"
#include "fp4forge/format/quantized_tensor.h"

namespace fp4forge::cuda {
namespace {

template <typename T>
T* DeviceCopy(const std::vector<T>& host) {
  T* d = nullptr;
  EXPECT_EQ(cudaMalloc(&d, host.size() * sizeof(T)), cudaSuccess);
  EXPECT_EQ(cudaMemcpy(d, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice), cudaSuccess);
  return d;
}

TEST(GpuGemm, MatchesFloat64ReferenceForEveryM) {
  if (!DeviceAvailable()) GTEST_SKIP() << DeviceDescription();
  std::mt19937 rng(7);
  std::normal_distribution<float> normal;
  const std::vector<std::pair<int64_t, int64_t>> shapes = {{64, 64}, {208, 20}, {192, 320}, {1024, 576}, {4096, 128}, {128, 64}};
  for (const auto& [k, n] : shapes) {
    std::vector<float> w(static_cast<size_t>(n * k));
    for (float& v : w) v = normal(rng) * 0.02f;
    const QuantizedTensor q = QuantizeRef(Nvfp4Spec{}, {.data = w.data(), .rows = n, .cols = k});
    const std::vector<float> deq = DequantizeRef(q);
    const Nvfp4MmaWeights reordered = ReorderNvfp4ForMma(q.codes, q.block_scales, n, k);
    uint8_t* codes = DeviceCopy(reordered.codes);
    uint8_t* scales = DeviceCopy(reordered.scales);
    for (int64_t m : {1, 2, 3, 5, 8, 9, 16, 17, 31, 33, 64, 65, 129, 1000, 4096}) {
      if (m * n * k > int64_t{1} << 28) continue;  // the float64 reference's time
      std::vector<uint16_t> x(static_cast<size_t>(m * k));
      for (uint16_t& v : x) v = EncodeBF16(normal(rng));
      uint16_t* dx = DeviceCopy(x);
      std::vector<uint16_t> y(static_cast<size_t>(m * n), 0x7FC0);  // NaN: an element never written stays NaN
      uint16_t* dy = DeviceCopy(y);
      Nvfp4GemmOnDevice(dx, m, k, codes, scales, q.tensor_scales[0], n, dy, nullptr);
      ASSERT_EQ(cudaMemcpy(y.data(), dy, y.size() * 2, cudaMemcpyDeviceToHost), cudaSuccess);
      double err = 0, ref_norm = 0;
      for (int64_t r = 0; r < m; ++r) {
        for (int64_t c = 0; c < n; ++c) {
          double ref = 0;
          for (int64_t i = 0; i < k; ++i) ref += double{DecodeBF16(x[r * k + i])} * deq[c * k + i];
          const float got = DecodeBF16(y[r * n + c]);
          ASSERT_TRUE(std::isfinite(got)) << fmt::format("m {} k {} n {}: y[{}, {}] not written or NaN", m, k, n, r, c);
          err += (got - ref) * (got - ref);
          ref_norm += ref * ref;
        }
      }
      EXPECT_LE(std::sqrt(err / ref_norm), 0x1p-8 + 1e-4) << fmt::format("m {} k {} n {}", m, k, n);
      cudaFree(dx);
      cudaFree(dy);
    }
    cudaFree(codes);
    cudaFree(scales);
  }
}

}  // namespace
}  // namespace fp4forge::cuda
