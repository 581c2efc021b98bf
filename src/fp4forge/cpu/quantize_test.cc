// The SIMD quantizers equal the scalar reference bit for bit: on every compiled Highway target the
// CPU supports, for every format and rule, f32/bf16/f16 input, ragged shapes and thread counts.
#include "fp4forge/cpu/quantize.h"

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <gtest/gtest.h>

#include "fp4forge/codec/half.h"
#include "fp4forge/cpu/target.h"
#include "hwy/targets.h"

namespace fp4forge::cpu {
namespace {

// Gaussian rows of very different magnitudes, with the values that break careless kernels planted
// in: all-zero blocks, ±0, float32 subnormals, isolated large values, exact E2M1 decision points.
std::vector<float> HardData(int64_t rows, int64_t cols, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  std::uniform_int_distribution<int> pick(0, 15);
  std::vector<float> x(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; ++r) {
    const float row_scale = std::ldexp(1.0f, static_cast<int>(r % 5) * 3 - 6);
    for (int64_t c = 0; c < cols; ++c) {
      float v = normal(rng) * row_scale;
      switch (pick(rng)) {
        case 0: v = 0.0f; break;
        case 1: v = -0.0f; break;
        case 2: v = 1e-40f; break;
        case 3: v = std::ldexp(static_cast<float>(pick(rng) - 8) * 0.25f, static_cast<int>(r % 3)); break;
        default: break;
      }
      x[r * cols + c] = v;
    }
    if (cols >= 64) {  // one block of zeros and one outlier per row
      for (int k = 16; k < 32; ++k) x[r * cols + k] = 0.0f;
      x[r * cols + cols - 1] = 40.0f * row_scale;
    }
  }
  if (cols >= 48) {
    // Exact ties: 2688 makes the NVFP4 tensor scale exactly 1 (every other value stays below it),
    // so a block whose amax is 6 gets divisor 1 and lands on every E2M1 decision midpoint; search
    // rules meet ties at their power-of-two candidates too.
    x[0] = 2688.0f;
    const float ties[16] = {6, 0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5, -0.25f, -0.75f, -1.25f, -1.75f, -2.5f, -3.5f, -5, 5.5f};
    for (int k = 0; k < 16; ++k) x[32 + k] = ties[k];
  }
  return x;
}

struct Input {
  std::vector<float> f32;
  std::vector<uint16_t> half;  // bf16 or f16 bits
  ConstMatrixView view;
};

Input MakeInput(DType dtype, int64_t rows, int64_t cols, uint32_t seed) {
  Input in;
  in.f32 = HardData(rows, cols, seed);
  if (dtype != DType::kF32) {
    for (float v : in.f32) in.half.push_back(dtype == DType::kBF16 ? EncodeBF16(v) : EncodeF16(v));
  }
  const void* data = dtype == DType::kF32 ? static_cast<const void*>(in.f32.data()) : in.half.data();
  in.view = {.data = data, .dtype = dtype, .rows = rows, .cols = cols};
  return in;
}

std::vector<QuantSpec> AllSpecs() {
  std::vector<QuantSpec> specs;
  for (Nvfp4ScaleRule rule : {Nvfp4ScaleRule::kAmax, Nvfp4ScaleRule::kMse, Nvfp4ScaleRule::kMseExhaustive,
                              Nvfp4ScaleRule::kFourOverSix, Nvfp4ScaleRule::kSearch}) {
    specs.push_back(Nvfp4Spec{rule});
  }
  specs.push_back(Nvfp4Spec{Nvfp4ScaleRule::kAmax, Nvfp4Producer::kCompressedTensors});
  for (Mxfp4ScaleRule rule : {Mxfp4ScaleRule::kOcp, Mxfp4ScaleRule::kRoundUp, Mxfp4ScaleRule::kCompressedTensors}) {
    specs.push_back(Mxfp4Spec{rule});
  }
  for (bool asymmetric : {false, true}) {
    for (int g : {32, 64, 128}) {
      for (DType scale_dtype : {DType::kF16, DType::kBF16}) {
        specs.push_back(Int4Spec{{.group_size = g, .asymmetric = asymmetric, .scale_dtype = scale_dtype}});
      }
    }
  }
  specs.push_back(Fp8Spec{.per_channel = false});
  specs.push_back(Fp8Spec{.per_channel = true});
  return specs;
}

void ExpectSameBits(const QuantizedTensor& want, const QuantizedTensor& got) {
  ASSERT_EQ(want.codes, got.codes);
  ASSERT_EQ(want.block_scales, got.block_scales);
  ASSERT_EQ(want.group_scales, got.group_scales);
  ASSERT_EQ(want.zero_points, got.zero_points);
  ASSERT_EQ(want.tensor_scales.size(), got.tensor_scales.size());
  for (size_t i = 0; i < want.tensor_scales.size(); ++i) {
    ASSERT_EQ(std::bit_cast<uint32_t>(want.tensor_scales[i]), std::bit_cast<uint32_t>(got.tensor_scales[i]));
  }
}

class EveryTarget : public ::testing::Test {
 protected:
  // Printed so that a log shows which targets were checked on which CPU.
  static void SetUpTestSuite() { fmt::print("Highway targets under test: {}\n", fmt::join(SupportedTargetNames(), " ")); }
  void TearDown() override { hwy::SetSupportedTargetsForTest(0); }
};

// Quantize equals QuantizeRef on every target, for each dtype, shape and spec (1 and 3 threads).
void ExpectEqualsReference(const std::vector<DType>& dtypes, const std::vector<std::pair<int64_t, int64_t>>& shapes,
                           const std::vector<QuantSpec>& specs) {
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    for (DType dtype : dtypes) {
      for (const auto& [rows, cols] : shapes) {
        const Input in = MakeInput(dtype, rows, cols, static_cast<uint32_t>(rows * 1000 + cols));
        const float amax = TensorAmax(in.view, 1).amax;
        for (const QuantSpec& spec : specs) {
          const FormatTraits traits = Traits(spec);
          if (cols % traits.block_size != 0) continue;
          SCOPED_TRACE(fmt::format("target {} dtype {} shape [{}, {}] {} {}", hwy::TargetName(target),
                                   DTypeName(dtype), rows, cols, traits.format, traits.rule));
          const QuantizedTensor want = QuantizeRef(spec, in.view);
          for (int threads : {1, 3}) {
            ExpectSameBits(want, Quantize(spec, in.view, amax, threads));
            if (::testing::Test::HasFailure()) return;
          }
        }
      }
    }
  }
}

TEST_F(EveryTarget, QuantizeEqualsReferenceBitForBit) {
  // cols: one block; ragged block counts (tails shorter than a vector of blocks); a row longer
  // than the 2048-element chunk; FP8 also gets lengths that are no multiple of the lane count.
  ExpectEqualsReference({DType::kF32, DType::kBF16, DType::kF16},
                        {{1, 16}, {3, 48}, {2, 272}, {7, 128}, {5, 2176}, {2, 13}}, AllSpecs());
}

TEST_F(EveryTarget, ScaleCodeTableEqualsReferenceBitForBit) {
  // Tensors with more blocks than 16-bit amax patterns (2^15), MXFP4's 32-element blocks included,
  // are the ones whose block scale codes the kernels look up in BlockScaleCodeTable.
  std::vector<QuantSpec> specs = {Nvfp4Spec{Nvfp4ScaleRule::kAmax}, Nvfp4Spec{Nvfp4ScaleRule::kMse},
                                  Nvfp4Spec{Nvfp4ScaleRule::kAmax, Nvfp4Producer::kCompressedTensors}};
  for (Mxfp4ScaleRule rule : {Mxfp4ScaleRule::kOcp, Mxfp4ScaleRule::kRoundUp, Mxfp4ScaleRule::kCompressedTensors}) {
    specs.push_back(Mxfp4Spec{rule});
  }
  ExpectEqualsReference({DType::kBF16, DType::kF16}, {{65, 16384}}, specs);
}

TEST_F(EveryTarget, SearchedTensorScaleEqualsReferenceBitForBit) {
  // A fused group of three members, of every dtype: 1200 x 240 + 96 x 240 + 7 x 240 elements are
  // 19530 blocks, so the search samples every second row (Nvfp4SearchRowStride); the smallest
  // member alone is searched whole. Rows of 15 blocks leave a tail shorter than a vector of blocks.
  for (DType dtype : {DType::kF32, DType::kBF16, DType::kF16}) {
    const Input a = MakeInput(dtype, 1200, 240, 1), b = MakeInput(dtype, 96, 240, 2), c = MakeInput(dtype, 7, 240, 3);
    const float amax = std::max({TensorAmax(a.view, 1).amax, TensorAmax(b.view, 1).amax, TensorAmax(c.view, 1).amax});
    const ConstMatrixView group[] = {a.view, b.view, c.view};
    ASSERT_EQ(Nvfp4SearchRowStride(group), 2);
    const float want_group = SearchNvfp4TensorScaleRef(group, amax);
    const float want_alone = SearchNvfp4TensorScaleRef(std::span(group).last(1), TensorAmax(c.view, 1).amax);
    for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
      hwy::SetSupportedTargetsForTest(target);
      SCOPED_TRACE(fmt::format("target {} dtype {}", hwy::TargetName(target), DTypeName(dtype)));
      for (int threads : {1, 3}) {
        ASSERT_EQ(std::bit_cast<uint32_t>(SearchNvfp4TensorScale(group, amax, 2, threads)), std::bit_cast<uint32_t>(want_group));
        ASSERT_EQ(std::bit_cast<uint32_t>(SearchNvfp4TensorScale(std::span(group).last(1), TensorAmax(c.view, 1).amax, 1, threads)),
                  std::bit_cast<uint32_t>(want_alone));
      }
    }
  }
}

TEST_F(EveryTarget, TensorAmaxFindsTheMaxAndNonFiniteValues) {
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    SCOPED_TRACE(hwy::TargetName(target));
    std::vector<float> x(3 * 100, 0.5f);
    x[123] = -7.25f;
    const ConstMatrixView view{.data = x.data(), .dtype = DType::kF32, .rows = 3, .cols = 100};
    for (int threads : {1, 2}) {
      const AmaxResult r = TensorAmax(view, threads);
      EXPECT_EQ(r.amax, 7.25f);
      EXPECT_TRUE(r.all_finite);
    }
    for (float bad : {NAN, INFINITY, -INFINITY}) {
      x[299] = bad;  // the very last element, past every full vector
      EXPECT_FALSE(TensorAmax(view, 2).all_finite) << bad;
      x[299] = 0.5f;
      x[0] = bad;
      EXPECT_FALSE(TensorAmax(view, 2).all_finite) << bad;
      x[0] = 0.5f;
    }
  }
}

TEST(Dequantize, EqualsReferenceForEveryThreadCount) {
  const Input in = MakeInput(DType::kF32, 9, 256, 1);
  for (const QuantSpec& spec : AllSpecs()) {
    const QuantizedTensor q = QuantizeRef(spec, in.view);
    const std::vector<float> want = DequantizeRef(q);
    for (int threads : {1, 2, 4}) EXPECT_EQ(Dequantize(q, threads), want);
  }
}

}  // namespace
}  // namespace fp4forge::cpu
