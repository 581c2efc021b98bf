// The SIMD weight decoders equal the scalar reference on every compiled target; products agree with
// the double-precision reference within float32 summation error (plus, for E2M1 weights at batch 1,
// the int16 rounding of the activations) and do not depend on thread count.
#include "fp4forge/cpu/matmul.h"

#include <cmath>
#include <random>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "fp4forge/base/thread_pool.h"
#include "fp4forge/codec/e4m3.h"
#include "fp4forge/codec/half.h"
#include "hwy/targets.h"

namespace fp4forge::cpu {
namespace {

// A matrix of random stored bytes: every code, scales over the whole E4M3/UE8M0 range in use.
struct Stored {
  std::vector<uint8_t> values, block_scales, row_scales;
  WeightMatrix w;
};

Stored MakeStored(WeightEncoding encoding, int64_t rows, int64_t cols, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> byte(0, 255);
  std::normal_distribution<float> normal(0.0f, 0.05f);
  Stored s;
  s.w = {.encoding = encoding, .rows = rows, .cols = cols};
  const int64_t n = rows * cols;
  switch (encoding) {
    case WeightEncoding::kF32:
      s.values.resize(4 * n);
      for (int64_t i = 0; i < n; ++i) {
        const float v = normal(rng);
        std::memcpy(&s.values[4 * i], &v, 4);
      }
      break;
    case WeightEncoding::kBF16:
    case WeightEncoding::kF16:
      s.values.resize(2 * n);
      for (int64_t i = 0; i < n; ++i) {
        // Normal values, plus subnormals and signed zeros now and then.
        float v = normal(rng);
        if (i % 97 == 0) v = (i % 2 ? -1.0f : 1.0f) * 3e-7f;
        if (i % 89 == 0) v = -0.0f;
        const uint16_t bits = encoding == WeightEncoding::kBF16 ? EncodeBF16(v) : EncodeF16(v);
        std::memcpy(&s.values[2 * i], &bits, 2);
      }
      break;
    case WeightEncoding::kNvfp4:
    case WeightEncoding::kMxfp4: {
      s.values.resize(n / 2);
      for (uint8_t& b : s.values) b = static_cast<uint8_t>(byte(rng));
      const int64_t block = encoding == WeightEncoding::kNvfp4 ? 16 : 32;
      s.block_scales.resize(n / block);
      // NVFP4: positive E4M3 codes (0x00..0x7E); MXFP4: exponents around 2^0.
      std::uniform_int_distribution<int> scale(encoding == WeightEncoding::kNvfp4 ? 0 : 100,
                                               encoding == WeightEncoding::kNvfp4 ? 0x7E : 140);
      for (uint8_t& b : s.block_scales) b = static_cast<uint8_t>(scale(rng));
      s.w.tensor_scalar = encoding == WeightEncoding::kNvfp4 ? 3.1e-5f : 1.0f;
      break;
    }
    case WeightEncoding::kFp8: {
      s.values.resize(n);
      for (uint8_t& b : s.values) {
        do b = static_cast<uint8_t>(byte(rng));
        while ((b & 0x7F) == 0x7F);  // no NaN codes
      }
      s.row_scales.resize(4 * rows);
      for (int64_t r = 0; r < rows; ++r) {
        const float v = 0.001f * (1 + r);
        std::memcpy(&s.row_scales[4 * r], &v, 4);
      }
      s.w.tensor_scalar = 0.002f;
      break;
    }
  }
  s.w.values = s.values.data();
  s.w.block_scales = s.block_scales.empty() ? nullptr : s.block_scales.data();
  return s;
}

const WeightEncoding kAll[] = {WeightEncoding::kF32, WeightEncoding::kBF16, WeightEncoding::kF16,
                               WeightEncoding::kNvfp4, WeightEncoding::kMxfp4, WeightEncoding::kFp8};

class EveryTarget : public ::testing::Test {
 protected:
  void TearDown() override { hwy::SetSupportedTargetsForTest(0); }
};

TEST_F(EveryTarget, DecodeRowsEqualsReference) {
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    for (WeightEncoding e : kAll) {
      for (const auto& [rows, cols] : std::vector<std::pair<int64_t, int64_t>>{{3, 32}, {5, 96}, {2, 4160}}) {
        for (bool per_channel : {false, true}) {
          if (per_channel && e != WeightEncoding::kFp8) continue;
          Stored s = MakeStored(e, rows, cols, static_cast<uint32_t>(rows * cols));
          if (per_channel) s.w.row_scales = s.row_scales.data();
          for (Nvfp4Producer producer : {Nvfp4Producer::kModelOpt, Nvfp4Producer::kCompressedTensors}) {
            if (producer == Nvfp4Producer::kCompressedTensors && e != WeightEncoding::kNvfp4) continue;
            s.w.producer = producer;
            if (producer == Nvfp4Producer::kCompressedTensors) s.w.tensor_scalar = 1 / s.w.tensor_scalar;
            SCOPED_TRACE(fmt::format("target {} {} [{}, {}]", hwy::TargetName(target), WeightEncodingName(e), rows, cols));
            std::vector<float> want(rows * cols), got(rows * cols, std::nanf(""));
            DecodeRowsRef(s.w, 0, rows, want.data());
            DecodeRows(s.w, 0, rows, got.data());
            // Equal values (a code for -0 may decode to +0: the same number).
            for (size_t i = 0; i < want.size(); ++i) ASSERT_EQ(want[i], got[i]) << "element " << i;
          }
        }
      }
    }
  }
}

TEST_F(EveryTarget, MatMulAgreesWithReferenceAndIgnoresThreadCount) {
  ThreadPool one(1), three(3);
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    for (WeightEncoding e : kAll) {
      // Rows not a multiple of the 4-row tile, K not a multiple of any vector for dense weights.
      // E2M1: 384 = whole chunks of the batch-1 kernel (32, 64 or 128 elements by vector width);
      // 400, 416 and 480 leave tails of one or more blocks.
      for (const int64_t cols : e == WeightEncoding::kNvfp4 ? std::vector<int64_t>{384, 400, 480}
                                : e == WeightEncoding::kMxfp4 ? std::vector<int64_t>{384, 416, 480}
                                                              : std::vector<int64_t>{333}) {
      const int64_t rows = 23;
      const Stored s = MakeStored(e, rows, cols, 7);
      for (int64_t m : {1, 3}) {
        SCOPED_TRACE(fmt::format("target {} {} m {}", hwy::TargetName(target), WeightEncodingName(e), m));
        std::mt19937 rng(m);
        std::normal_distribution<float> normal;
        std::vector<float> x(m * cols);
        // Blocks of 16 at different magnitudes, and a zero one, so that per-block scales matter.
        constexpr float kMagnitude[5] = {1, 100, 0.01f, 0, 3};
        for (size_t k = 0; k < x.size(); ++k) x[k] = normal(rng) * kMagnitude[k / 16 % 5];
        std::vector<float> ref(m * rows), y1(m * rows, std::nanf("")), y3(m * rows, std::nanf(""));
        MatMulRef(s.w, x.data(), m, ref.data());
        MatMul(s.w, x.data(), m, y1.data(), one);
        MatMul(s.w, x.data(), m, y3.data(), three);
        std::vector<float> row(cols);
        for (int64_t i = 0; i < m; ++i) {
          for (int64_t n = 0; n < rows; ++n) {
            // Float32 summation of K products is within K · 2^-24 · Σ|x·w| of the exact sum. At batch 1,
            // E2M1 weights meet x rounded to int16 steps of amax_b / 32767 per weight block b: each
            // activation is off by at most half a step (2^-7 of slack for the float scale arithmetic).
            DecodeRowsRef(s.w, n, n + 1, row.data());
            const bool int16_x = m == 1 && (e == WeightEncoding::kNvfp4 || e == WeightEncoding::kMxfp4);
            const int64_t block = e == WeightEncoding::kNvfp4 ? 16 : 32;
            double magnitude = 0, rounding = 0;
            for (int64_t k = 0; k < cols; ++k) {
              magnitude += std::fabs(static_cast<double>(x[i * cols + k]) * row[k]);
              if (int16_x) {
                float amax = 0;
                for (int64_t j = k / block * block; j < (k / block + 1) * block; ++j) amax = std::max(amax, std::fabs(x[j]));
                rounding += std::fabs(row[k]) * amax / 65534 * (1 + 0x1p-7);
              }
            }
            const double bound = cols * 0x1p-24 * magnitude + rounding + 1e-30;
            ASSERT_LE(std::fabs(y1[i * rows + n] - ref[i * rows + n]), bound) << "row " << i << " col " << n;
            ASSERT_EQ(std::bit_cast<uint32_t>(y1[i * rows + n]), std::bit_cast<uint32_t>(y3[i * rows + n]));
          }
        }
      }
      }
    }
  }
}

TEST(WeightMatrix, StoredBytesCountsCodesAndScales) {
  EXPECT_EQ((WeightMatrix{.encoding = WeightEncoding::kNvfp4, .rows = 2, .cols = 32}.StoredBytes()), 32 + 4);
  EXPECT_EQ((WeightMatrix{.encoding = WeightEncoding::kMxfp4, .rows = 2, .cols = 64}.StoredBytes()), 64 + 4);
  EXPECT_EQ((WeightMatrix{.encoding = WeightEncoding::kBF16, .rows = 3, .cols = 5}.StoredBytes()), 30);
}

}  // namespace
}  // namespace fp4forge::cpu
