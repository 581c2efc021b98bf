// Block-format references against FORMATS.md §7 and against properties every correct quantizer has.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "fp4forge/codec/e2m1.h"
#include "fp4forge/codec/e4m3.h"
#include "fp4forge/codec/half.h"
#include "fp4forge/format/fp8.h"
#include "fp4forge/format/metrics.h"
#include "fp4forge/format/mxfp4.h"
#include "fp4forge/format/nvfp4.h"
#include "fp4forge/format/quantized_tensor.h"

namespace fp4forge {
namespace {

std::vector<float> Gaussian(size_t n, uint32_t seed, float sigma = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, sigma);
  std::vector<float> v(n);
  for (float& x : v) x = normal(rng);
  return v;
}

// ---- NVFP4: TV-4 --------------------------------------------------------------------------------

const std::vector<float> kTV4Row = {
    0, 0.875, 1.75, 2.625, 3.5, 5.25, 7, 10.5, -0.875, -1.75, -2.625, -3.5, -5.25, -7, -10.5, 1.3125,
    0.125, 0.375, 0.625, 0.875, 1.25, 1.75, 2.5, 3, -0.125, -0.375, 0.1, -0.05, 0, -3, 0.3, -2.0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, -0.5};

TEST(Nvfp4, ReproducesTV4ModelOptBytes) {
  const float s = Nvfp4TensorScale(10.5f, Nvfp4ScaleRule::kAmax);
  EXPECT_EQ(s, 0.00390625f);
  std::vector<uint8_t> codes(32), scales(4);
  QuantizeNvfp4RowRef(kTV4Row.data(), 64, Nvfp4ScaleRule::kAmax, s, codes.data(), scales.data());
  EXPECT_EQ(scales, (std::vector<uint8_t>{0x7E, 0x70, 0x38, 0x5B}));
  const std::vector<uint8_t> expected = {0x10, 0x32, 0x54, 0x76, 0xA9, 0xCB, 0xED, 0x2F, 0x20, 0x42, 0x64,
                                         0x76, 0xA8, 0x80, 0xF0, 0xE1, 0,    0,    0,    0,    0,    0,
                                         0,    0,    0,    0,    0,    0,    0,    0,    0,    0xF0};
  EXPECT_EQ(codes, expected);

  std::vector<float> restored(64);
  DequantizeNvfp4RowRef(codes.data(), scales.data(), 64, s, Nvfp4Producer::kModelOpt, restored.data());
  for (int k = 0; k < 15; ++k) EXPECT_EQ(restored[k], kTV4Row[k]) << k;  // block 0 exact but the last
  EXPECT_EQ(restored[15], 1.75f);
  const float block1[16] = {0, 0.5, 0.5, 1, 1, 2, 2, 3, -0.0f, -0.5, 0, -0.0f, 0, -3, 0.25, -2};
  for (int k = 0; k < 16; ++k) EXPECT_EQ(restored[16 + k], block1[k]) << k;
  EXPECT_EQ(restored[63], -0.515625f);
}

TEST(Nvfp4, AllZeroTensorGetsUnitScalesAndZeroCodes) {
  EXPECT_EQ(Nvfp4TensorScale(0.0f, Nvfp4ScaleRule::kAmax), 1.0f);
  const std::vector<float> zeros(32, 0.0f);
  std::vector<uint8_t> codes(16, 0xFF), scales(2);
  QuantizeNvfp4RowRef(zeros.data(), 32, Nvfp4ScaleRule::kMse, 1.0f, codes.data(), scales.data());
  EXPECT_EQ(scales, (std::vector<uint8_t>{0x38, 0x38}));
  EXPECT_EQ(codes, std::vector<uint8_t>(16, 0));
}

TEST(Nvfp4, TinyBlocksClampToTheSmallestSubnormalScale) {
  // block amax/(6S) far below 2^-9: ModelOpt clamps the scale to 2^-9 (0x01) rather than 0.
  EXPECT_EQ(Nvfp4AmaxScaleCode(1e-12f, 1.0f), 0x01);
  EXPECT_EQ(Nvfp4AmaxScaleCode(6.0f * 448.0f, 1.0f), 0x7E);
  EXPECT_EQ(Nvfp4AmaxScaleCode(1e9f, 1.0f), 0x7E);  // caller's amax too small: clamped, not NaN
}

TEST(Nvfp4, SearchRulesAreNeverWorseThanAmaxPerBlock) {
  for (float sigma : {1.0f, 1e-3f, 30.0f}) {
    const std::vector<float> x = Gaussian(16 * 4096, 7, sigma);
    float amax = 0;
    for (float v : x) amax = std::max(amax, std::fabs(v));
    const float s = Nvfp4TensorScale(amax, Nvfp4ScaleRule::kAmax);
    int strictly_better = 0;
    for (size_t b = 0; b < x.size() / 16; ++b) {
      const float* block = &x[16 * b];
      const float e_amax = Nvfp4BlockSquaredError(block, Nvfp4SelectScaleCode(block, Nvfp4ScaleRule::kAmax, s), s);
      const float e_mse = Nvfp4BlockSquaredError(block, Nvfp4SelectScaleCode(block, Nvfp4ScaleRule::kMse, s), s);
      const float e_all =
          Nvfp4BlockSquaredError(block, Nvfp4SelectScaleCode(block, Nvfp4ScaleRule::kMseExhaustive, s), s);
      ASSERT_LE(e_mse, e_amax);
      ASSERT_LE(e_all, e_mse);
      strictly_better += e_mse < e_amax;
    }
    // The search must actually change something: most Gaussian blocks have a better scale.
    EXPECT_GT(strictly_better, 4096 / 4) << sigma;
  }
}

TEST(Nvfp4, FourOverSixPicksTheBetterOfTwoScales) {
  const std::vector<float> x = Gaussian(16 * 1024, 3);
  float amax = 0;
  for (float v : x) amax = std::max(amax, std::fabs(v));
  const float s = Nvfp4TensorScale(amax, Nvfp4ScaleRule::kFourOverSix);
  EXPECT_EQ(s, amax / 1536.0f);
  int picked_four = 0;
  for (size_t b = 0; b < x.size() / 16; ++b) {
    const float* block = &x[16 * b];
    float block_amax = 0;
    for (int k = 0; k < 16; ++k) block_amax = std::max(block_amax, std::fabs(block[k]));
    const uint8_t six = Nvfp4AmaxScaleCode(block_amax, s, 6.0f), four = Nvfp4AmaxScaleCode(block_amax, s, 4.0f);
    const uint8_t chosen = Nvfp4SelectScaleCode(block, Nvfp4ScaleRule::kFourOverSix, s);
    ASSERT_TRUE(chosen == six || chosen == four);
    ASSERT_EQ(Nvfp4BlockSquaredError(block, chosen, s),
              std::min(Nvfp4BlockSquaredError(block, six, s), Nvfp4BlockSquaredError(block, four, s)));
    ASSERT_LE(DecodeE4M3(chosen), 384.0f);  // 448 is never needed with S = amax/1536
    picked_four += chosen == four && four != six;
  }
  EXPECT_GT(picked_four, 0);
}

TEST(Nvfp4, SearchScalesAreMultiplesOfTheMseScale) {
  const float amax = 3.7f, s = Nvfp4TensorScale(amax, Nvfp4ScaleRule::kMse);
  const std::vector<float> scales = Nvfp4SearchScales(amax);
  ASSERT_EQ(scales.size(), 35u);
  EXPECT_EQ(scales[0], s);  // the incumbent: a tie keeps the mse rule's S
  std::vector<int> multiples;
  for (float c : scales) multiples.push_back(static_cast<int>(std::lround(c / s * 16.0f)));
  for (int i = 14, k = 1; i <= 48; ++i) {
    if (i == 16) continue;
    EXPECT_EQ(multiples[k], i);
    EXPECT_EQ(scales[k++], s * (static_cast<float>(i) / 16.0f));
  }
  EXPECT_EQ(Nvfp4SearchScales(0.0f), std::vector<float>{1.0f});
  EXPECT_EQ(Nvfp4SearchRowStride(kNvfp4SearchSampleBlocks), 1);
  EXPECT_EQ(Nvfp4SearchRowStride(kNvfp4SearchSampleBlocks + 1), 2);
  EXPECT_EQ(Nvfp4PickSearchScale(std::vector<double>{2.0, 1.0, 1.0, 3.0}), 1u);  // the earlier of a tie
}

// The search rule against the mse rule on groups of real-looking weights: never worse by its own
// measure (the sum of Nvfp4RowSearchError, here over the whole group), and in squared error of the
// dequantized weights lower on the sum over the groups (the ISSUE-18 experiment saw 54% vs 39% of
// amax's perplexity loss removed; here only the direction is asserted, per distribution).
TEST(Nvfp4, SearchIsNeverWorseThanMseOnItsMeasure) {
  for (const char* dist : {"gaussian", "student-t"}) {
    double search_total = 0, mse_total = 0;
    int moved = 0;
    for (uint32_t seed = 0; seed < 12; ++seed) {
      std::vector<float> x = Gaussian(64 * 256, seed);
      if (std::string(dist) == "student-t") {  // heavy tails: a few large weights per row
        std::mt19937 rng(seed);
        std::chi_squared_distribution<float> chi(3.0f);
        for (float& v : x) v /= std::sqrt(chi(rng) / 3.0f);
      }
      const ConstMatrixView view{.data = x.data(), .rows = 64, .cols = 256};
      float amax = 0;
      for (float v : x) amax = std::max(amax, std::fabs(v));
      const ConstMatrixView group[] = {view};
      const float s = SearchNvfp4TensorScaleRef(group, amax), s_mse = Nvfp4TensorScale(amax, Nvfp4ScaleRule::kMse);
      double search_measure = 0, mse_measure = 0;
      for (int64_t r = 0; r < 64; ++r) {
        search_measure += Nvfp4RowSearchError(&x[r * 256], 256, s);
        mse_measure += Nvfp4RowSearchError(&x[r * 256], 256, s_mse);
      }
      ASSERT_LE(search_measure, mse_measure) << dist << " seed " << seed;
      moved += s != s_mse;
      const QuantizedTensor q = QuantizeRef(Nvfp4Spec{Nvfp4ScaleRule::kSearch}, view);
      const QuantizedTensor m = QuantizeRef(Nvfp4Spec{Nvfp4ScaleRule::kMse}, view);
      ASSERT_EQ(q.tensor_scales[0], s);
      const std::vector<float> dq = DequantizeRef(q), dm = DequantizeRef(m);
      for (size_t i = 0; i < x.size(); ++i) {
        search_total += (dq[i] - x[i]) * (dq[i] - x[i]);
        mse_total += (dm[i] - x[i]) * (dm[i] - x[i]);
      }
    }
    EXPECT_GT(moved, 6) << dist;  // the search does move S on most tensors
    EXPECT_LT(search_total, mse_total) << dist;
  }
}

TEST(Nvfp4, ScaleBytesAreValidAndTheMaxBlockGets448) {
  const std::vector<float> x = Gaussian(4096, 11, 0.02f);
  for (Nvfp4ScaleRule rule : {Nvfp4ScaleRule::kAmax, Nvfp4ScaleRule::kMse, Nvfp4ScaleRule::kMseExhaustive,
                              Nvfp4ScaleRule::kFourOverSix}) {
    const QuantizedTensor q = QuantizeRef(Nvfp4Spec{rule}, {.data = x.data(), .rows = 8, .cols = 512});
    for (uint8_t scale : q.block_scales) {
      ASSERT_LT(scale, 0x7F);  // no NaN, no sign bit
      ASSERT_GT(scale, 0x00);
    }
    if (rule == Nvfp4ScaleRule::kAmax) {
      EXPECT_EQ(*std::max_element(q.block_scales.begin(), q.block_scales.end()), 0x7E);
    }
  }
}

TEST(Nvfp4, CallerGlobalAmaxSetsTheTensorScale) {
  const std::vector<float> x = Gaussian(256, 5);
  const QuantizedTensor own = QuantizeRef(Nvfp4Spec{}, {.data = x.data(), .rows = 2, .cols = 128});
  const QuantizedTensor shared = QuantizeRef(Nvfp4Spec{}, {.data = x.data(), .rows = 2, .cols = 128}, 100.0f);
  EXPECT_EQ(shared.tensor_scales[0], 100.0f / 2688.0f);
  EXPECT_NE(own.tensor_scales[0], shared.tensor_scales[0]);
  EXPECT_LT(*std::max_element(shared.block_scales.begin(), shared.block_scales.end()), 0x7E);
}

// compressed-tensors' arithmetic, worked by hand in BF16 (tests/oracle checks it against PyTorch):
// 1/5 -> 0.2001953125, · 2688 = 538.125 -> 540; 2688/3 -> 896 both ways; amax 0 overflows -> 1.
TEST(Nvfp4, CompressedTensorsGlobalScaleRoundsInTheWeightDtype) {
  EXPECT_EQ(Nvfp4CtGlobalScale(5.0f, DType::kBF16), 540.0f);
  EXPECT_EQ(Nvfp4CtGlobalScale(5.0f, DType::kF32), (1.0f / 5.0f) * 2688.0f);
  EXPECT_EQ(Nvfp4CtGlobalScale(3.0f, DType::kBF16), 896.0f);
  for (DType dtype : {DType::kF32, DType::kBF16, DType::kF16}) EXPECT_EQ(Nvfp4CtGlobalScale(0.0f, dtype), 1.0f);
}

// 540 · bf16(5/6) = 540 · 0.83203125 = 449.3 -> clamped to 448 (0x7E); zero and underflowing blocks
// get 0.125 (0x20); the divisor is e4m3 / gs.
TEST(Nvfp4, CompressedTensorsBlockScales) {
  EXPECT_EQ(Nvfp4CtScaleCode(5.0f, 540.0f, DType::kBF16), 0x7E);
  EXPECT_EQ(Nvfp4CtScaleCode(0.0f, 540.0f, DType::kBF16), 0x20);
  EXPECT_EQ(Nvfp4CtScaleCode(1e-6f, 540.0f, DType::kBF16), 0x20);
  EXPECT_EQ(Nvfp4CtScaleCode(1.0f, 6.0f, DType::kF32), 0x38);  // 6 · 1/6 rounds to exactly 1.0
  EXPECT_EQ(Nvfp4Divisor(0x38, 4.0f, Nvfp4Producer::kCompressedTensors), 0.25f);
  EXPECT_EQ(Nvfp4Divisor(0x38, 4.0f, Nvfp4Producer::kModelOpt), 4.0f);
}

TEST(Nvfp4, CompressedTensorsRowRoundTrips) {
  const std::vector<float> x = Gaussian(256, 21);
  const QuantizedTensor q = QuantizeRef(Nvfp4Spec{Nvfp4ScaleRule::kAmax, Nvfp4Producer::kCompressedTensors},
                                        {.data = x.data(), .rows = 2, .cols = 128});
  float amax = 0.0f;
  for (float v : x) amax = std::max(amax, std::fabs(v));
  EXPECT_EQ(q.tensor_scales[0], Nvfp4CtGlobalScale(amax, DType::kF32));
  const QuantizedTensor modelopt = QuantizeRef(Nvfp4Spec{}, {.data = x.data(), .rows = 2, .cols = 128});
  const std::vector<float> a = DequantizeRef(q), b = DequantizeRef(modelopt);
  double err_a = 0, err_b = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    err_a += (a[i] - x[i]) * (a[i] - x[i]);
    err_b += (b[i] - x[i]) * (b[i] - x[i]);
  }
  EXPECT_NEAR(err_a, err_b, 0.05 * err_b);  // same method, rounded differently in a few blocks
}

// ---- MXFP4 --------------------------------------------------------------------------------------

TEST(Mxfp4, ScaleExponentsMatchTV8) {
  const struct { float amax; uint8_t ocp, round_up, compressed_tensors; } cases[] = {
      {5.0f, 127, 127, 127}, {6.0f, 127, 127, 127}, {6.5f, 127, 128, 127}, {7.0f, 127, 128, 128},
      {7.5f, 127, 128, 128}, {8.0f, 128, 128, 128}, {0.75f, 124, 124, 124}, {0.001f, 115, 115, 115}};
  for (const auto& c : cases) {
    EXPECT_EQ(Mxfp4ScaleCode(c.amax, Mxfp4ScaleRule::kOcp), c.ocp) << c.amax;
    EXPECT_EQ(Mxfp4ScaleCode(c.amax, Mxfp4ScaleRule::kRoundUp), c.round_up) << c.amax;
    EXPECT_EQ(Mxfp4ScaleCode(c.amax, Mxfp4ScaleRule::kCompressedTensors), c.compressed_tensors) << c.amax;
  }
  for (Mxfp4ScaleRule rule : {Mxfp4ScaleRule::kOcp, Mxfp4ScaleRule::kRoundUp, Mxfp4ScaleRule::kCompressedTensors}) {
    EXPECT_EQ(Mxfp4ScaleCode(0.0f, rule), 0);
  }
  EXPECT_EQ(Mxfp4ScaleCode(3e38f, Mxfp4ScaleRule::kOcp), 127 + 125);
}

TEST(Mxfp4, OcpSaturatesAndRoundUpNeverClips) {
  std::vector<float> block(32, 0.0f);
  block[0] = 7.0f;
  block[1] = -7.0f;
  block[2] = 1.0f;
  std::vector<uint8_t> codes(16), scale(1);
  QuantizeMxfp4RowRef(block.data(), 32, Mxfp4ScaleRule::kOcp, codes.data(), scale.data());
  EXPECT_EQ(scale[0], 127);
  EXPECT_EQ(codes[0], PackNibbles(0x7, 0xF));  // ±7 saturate to ±6
  QuantizeMxfp4RowRef(block.data(), 32, Mxfp4ScaleRule::kRoundUp, codes.data(), scale.data());
  EXPECT_EQ(scale[0], 128);
  EXPECT_EQ(codes[0], PackNibbles(0x6, 0xE));  // ±7/2 = ±3.5: a tie, to even ±4, no clipping
}

// ---- INT4 ---------------------------------------------------------------------------------------

TEST(Int4, ErrorIsHalfAStepInsideTheGridAndAtMostOneStepAtItsEdges) {
  const std::vector<float> x = Gaussian(128 * 16, 9);
  for (bool asymmetric : {false, true}) {
    for (int g : {32, 64, 128}) {
      for (DType scale_dtype : {DType::kF16, DType::kBF16}) {
        const Int4GroupParams p{.group_size = g, .asymmetric = asymmetric, .scale_dtype = scale_dtype};
        const QuantizedTensor q = QuantizeRef(Int4Spec{p}, {.data = x.data(), .rows = 16, .cols = 128});
        const std::vector<float> y = DequantizeRef(q);
        for (size_t i = 0; i < x.size(); ++i) {
          const size_t group = i / g;
          const float scale = DecodeScale16(q.group_scales[group], scale_dtype);
          const int zero_point = asymmetric ? q.zero_points[group] : kInt4SymmetricZeroPoint;
          const float steps = x[i] / scale + static_cast<float>(zero_point);  // position on the code grid
          const float error = std::fabs(y[i] - x[i]);
          // Inside [0, 15] rounding costs at most half a step; the scale's own rounding to f16/bf16
          // and the zero point's rounding may push the group's extreme past the grid by < 1 step.
          ASSERT_LE(error, (steps >= -0.5f && steps <= 15.5f ? 0.5f : 1.0f) * scale * 1.0001f) << i;
        }
        if (!asymmetric) {
          for (uint8_t byte : q.codes) {
            ASSERT_NE(LowNibble(byte), 0);  // -8 is never needed with scale = amax/7
            ASSERT_NE(HighNibble(byte), 0);
          }
        }
      }
    }
  }
}

// ---- FP8 ----------------------------------------------------------------------------------------

TEST(Fp8, MapsTheAmaxTo448) {
  const std::vector<float> x = {0.5f, -2.0f, 1.0f, 0.0f};
  std::vector<uint8_t> codes(4);
  const float scale = Fp8Scale(2.0f);
  EXPECT_EQ(scale, 2.0f / 448.0f);
  QuantizeFp8RowRef(x.data(), 4, scale, codes.data());
  EXPECT_EQ(codes[1], 0xFE);
  EXPECT_EQ(codes[3], 0x00);
  std::vector<float> y(4);
  DequantizeFp8RowRef(codes.data(), 4, scale, y.data());
  EXPECT_FLOAT_EQ(y[1], -2.0f);
  EXPECT_NEAR(y[0], 0.5f, 0.5f / 16);
}

// ---- Metrics ------------------------------------------------------------------------------------

TEST(Metrics, KnownValues) {
  const float x[4] = {1, -1, 2, 0}, y[4] = {1, -1, 2, 0}, z[4] = {1.5f, -1, 2, 0};
  const ErrorMetrics exact = MeasureError(x, y, 4);
  EXPECT_EQ(exact.mse, 0.0);
  EXPECT_EQ(exact.cosine, 1.0);
  EXPECT_TRUE(std::isinf(exact.sqnr_db));
  const ErrorMetrics off = MeasureError(x, z, 4);
  EXPECT_DOUBLE_EQ(off.mse, 0.25 / 4);
  EXPECT_DOUBLE_EQ(off.relative_mse, 0.25 / 6);
  EXPECT_DOUBLE_EQ(off.sqnr_db, -10 * std::log10(0.25 / 6));
  EXPECT_DOUBLE_EQ(off.max_abs_error, 0.5);
  EXPECT_DOUBLE_EQ(off.cosine, 6.5 / std::sqrt(6.0 * 7.25));
}

}  // namespace
}  // namespace fp4forge
