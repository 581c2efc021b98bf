// The GPU quantizers against the scalar reference, bit for bit, on random and adversarial tensors.
// Skipped (not failed) where no CUDA device is usable: CI builds this and has no GPU.
#include "fp4forge/cuda/quantize.h"

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "fp4forge/codec/half.h"
#include "fp4forge/cpu/quantize.h"

namespace fp4forge::cuda {
namespace {

class Gpu : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!DeviceAvailable()) GTEST_SKIP() << DeviceDescription();
  }
};

// Values that stress every decision: Gaussian rows of scales 2^-12 .. 2^6, zero blocks, -0, values
// exactly on E2M1 decision thresholds and E4M3 rounding ties of their block's divisor, subnormal
// floats, one outlier per row, and for float32 inputs magnitudes near float's limits.
std::vector<float> Adversarial(int64_t rows, int64_t cols, uint32_t seed, bool f32) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  std::uniform_int_distribution<int> pick(0, 19);
  const float kThresholds[] = {0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5.0f, 6.0f};
  std::vector<float> x(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; ++r) {
    const float row_scale = std::ldexp(1.0f, static_cast<int>(r % 7) * 3 - 12);
    for (int64_t c = 0; c < cols; ++c) {
      float v = normal(rng) * row_scale;
      switch (pick(rng)) {
        case 0: v = 0.0f; break;
        case 1: v = -0.0f; break;
        case 2: v = 1e-40f; break;
        case 3: v = kThresholds[pick(rng) % 8] * row_scale * (pick(rng) % 2 ? 1 : -1); break;
        case 4: v = static_cast<float>(pick(rng) - 10) * 0.0625f * row_scale; break;
        case 5: if (f32) v = std::ldexp(normal(rng), pick(rng) % 2 ? 100 : -120); break;
        default: break;
      }
      x[static_cast<size_t>(r * cols + c)] = v;
    }
    if (cols >= 64) {
      for (int k = 32; k < 64; ++k) x[static_cast<size_t>(r * cols + k)] = 0.0f;  // a zero block of either format
      x[static_cast<size_t>(r * cols + cols - 1)] = 40.0f * row_scale;
    }
  }
  return x;
}

void ExpectSameBits(const QuantizedTensor& want, const QuantizedTensor& got, const std::string& where) {
  ASSERT_EQ(want.block_scales.size(), got.block_scales.size()) << where;
  for (size_t i = 0; i < want.block_scales.size(); ++i) {
    ASSERT_EQ(want.block_scales[i], got.block_scales[i]) << where << ": block " << i;
  }
  for (size_t i = 0; i < want.codes.size(); ++i) ASSERT_EQ(want.codes[i], got.codes[i]) << where << ": code byte " << i;
  ASSERT_EQ(want.tensor_scales, got.tensor_scales) << where;
}

TEST_F(Gpu, QuantizeEqualsReferenceBitForBit) {
  const std::vector<QuantSpec> specs = {Nvfp4Spec{Nvfp4ScaleRule::kAmax}, Nvfp4Spec{Nvfp4ScaleRule::kMse},
                                        Nvfp4Spec{Nvfp4ScaleRule::kFourOverSix}, Mxfp4Spec{Mxfp4ScaleRule::kOcp}};
  fmt::print("device: {}\n", DeviceDescription());
  for (DType dtype : {DType::kF32, DType::kBF16, DType::kF16}) {
    for (const auto& [rows, cols] : std::vector<std::pair<int64_t, int64_t>>{{1, 32}, {3, 96}, {37, 512}, {1000, 4096}}) {
      for (uint32_t seed = 0; seed < 3; ++seed) {
        std::vector<float> x = Adversarial(rows, cols, seed * 7919 + static_cast<uint32_t>(rows), dtype == DType::kF32);
        std::vector<uint16_t> half;
        for (float& v : x) {
          if (dtype == DType::kBF16) half.push_back(EncodeBF16(v));
          if (dtype == DType::kF16) half.push_back(EncodeF16(std::fmin(std::fmax(v, -60000.0f), 60000.0f)));
        }
        const ConstMatrixView view{.data = dtype == DType::kF32 ? static_cast<const void*>(x.data()) : half.data(),
                                   .dtype = dtype, .rows = rows, .cols = cols};
        for (const QuantSpec& spec : specs) {
          const QuantizedTensor want = QuantizeRef(spec, view);
          const std::string where = fmt::format("{} {} [{}, {}] seed {}", Traits(spec).format, Traits(spec).rule, rows, cols, seed);
          ExpectSameBits(want, Quantize(spec, view, cpu::TensorAmax(view, 1).amax), where);
          if (HasFatalFailure()) return;
        }
      }
    }
  }
}

}  // namespace
}  // namespace fp4forge::cuda
