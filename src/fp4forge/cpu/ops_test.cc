// The SIMD transformer operations against their double-precision references, on every target.
#include "fp4forge/cpu/ops.h"

#include <cmath>
#include <random>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "fp4forge/base/thread_pool.h"
#include "hwy/targets.h"

namespace fp4forge::cpu {
namespace {

std::vector<float> Gaussian(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = normal(rng);
  return v;
}

class OpsEveryTarget : public ::testing::Test {
 protected:
  void TearDown() override { hwy::SetSupportedTargetsForTest(0); }
};

TEST_F(OpsEveryTarget, RmsNormAgreesWithReference) {
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    for (int64_t cols : {16, 100, 256}) {
      SCOPED_TRACE(fmt::format("target {} cols {}", hwy::TargetName(target), cols));
      const std::vector<float> x = Gaussian(3 * cols, 1, 3.0f), w = Gaussian(cols, 2);
      std::vector<float> want(x.size()), got(x.size());
      RmsNormRef(x.data(), 3, cols, w.data(), 1e-6f, want.data());
      RmsNorm(x.data(), 3, cols, w.data(), 1e-6f, got.data());
      // Float32 sum of squares of `cols` terms and three roundings after it: a few times
      // cols · 2^-24 relative.
      for (size_t i = 0; i < x.size(); ++i) ASSERT_NEAR(got[i], want[i], 4 * cols * 0x1p-24 * std::fabs(want[i]) + 1e-30);
    }
  }
}

TEST_F(OpsEveryTarget, AttentionAgreesWithReferenceAndIgnoresThreadCount) {
  ThreadPool one(1), three(3);
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    // GQA (8 query heads on 2 kv heads), a cache holding earlier positions, with and without a window.
    for (int64_t window : {0, 5}) {
      const AttentionShape s{.num_tokens = 4, .num_heads = 8, .num_kv_heads = 2, .head_dim = 20, .first_position = 9,
                             .sliding_window = window};
      SCOPED_TRACE(fmt::format("target {} window {}", hwy::TargetName(target), window));
      const int64_t positions = s.first_position + s.num_tokens, q_stride = s.num_heads * s.head_dim + 7;
      const std::vector<float> q = Gaussian(s.num_tokens * q_stride, 3), k = Gaussian(positions * 2 * 20, 4),
                               v = Gaussian(positions * 2 * 20, 5);
      const size_t n = static_cast<size_t>(s.num_tokens * s.num_heads * s.head_dim);
      std::vector<float> want(n), got1(n, std::nanf("")), got3(n, std::nanf(""));
      AttentionRef(s, q.data(), q_stride, k.data(), v.data(), want.data());
      Attention(s, q.data(), q_stride, k.data(), v.data(), got1.data(), one);
      Attention(s, q.data(), q_stride, k.data(), v.data(), got3.data(), three);
      // Outputs are convex combinations of unit-scale values: float32 error well under 1e-5.
      for (size_t i = 0; i < n; ++i) {
        ASSERT_NEAR(got1[i], want[i], 1e-5f) << i;
        ASSERT_EQ(got1[i], got3[i]) << i;
      }
    }
  }
}

TEST(Attention, TheWindowHidesOlderPositions) {
  // One query at position 3 attending with window 1 sees only itself: the output is its own value.
  ThreadPool pool(1);
  const AttentionShape s{.num_tokens = 1, .num_heads = 1, .num_kv_heads = 1, .head_dim = 4, .first_position = 3,
                         .sliding_window = 1};
  const std::vector<float> q = {1, 2, 3, 4}, k = Gaussian(16, 6), v = Gaussian(16, 7);
  std::vector<float> out(4);
  Attention(s, q.data(), 4, k.data(), v.data(), out.data(), pool);
  for (int d = 0; d < 4; ++d) EXPECT_FLOAT_EQ(out[d], v[12 + d]);
}

TEST(Activations, SiluAndGeluGateTheUpProjection) {
  std::vector<float> gate = {-2, 0, 1, 3}, up = {1, 2, 3, 4};
  std::vector<float> silu = gate, gelu = gate;
  SiluMul(silu.data(), up.data(), 4);
  GeluTanhMul(gelu.data(), up.data(), 4);
  for (int i = 0; i < 4; ++i) {
    const double x = gate[i];
    EXPECT_NEAR(silu[i], x / (1 + std::exp(-x)) * up[i], 1e-6);
    EXPECT_NEAR(gelu[i], 0.5 * x * (1 + std::erf(x / std::sqrt(2.0))) * up[i], 2e-3 * std::fabs(up[i]));  // tanh form
  }
}

}  // namespace
}  // namespace fp4forge::cpu
