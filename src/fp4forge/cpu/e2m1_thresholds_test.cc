// The integer thresholds reproduce EncodeE2M1(x / d) exactly: every bf16 and f16 value, and float32
// values at and around every boundary, for divisors of every kind.
#include "fp4forge/cpu/e2m1_thresholds.h"

#include <bit>
#include <cmath>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "fp4forge/codec/e2m1.h"
#include "fp4forge/codec/e4m3.h"
#include "fp4forge/codec/half.h"
#include "fp4forge/codec/ue8m0.h"

namespace fp4forge::cpu {
namespace {

uint8_t EncodeWithThresholds(uint32_t bits, int width, const std::array<int32_t, 8>& t) {
  const uint32_t sign_bit = 1u << (width - 1);
  const int32_t abs_bits = static_cast<int32_t>(bits & (sign_bit - 1));
  int code = 0;
  for (int i = 0; i < kE2M1MagnitudeThresholds; ++i) code += abs_bits > t[i];
  if ((bits & sign_bit) && abs_bits > t[7]) code |= 8;
  return static_cast<uint8_t>(code);
}

std::vector<float> Divisors() {
  std::vector<float> d;
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(-30.0f, 10.0f);
  for (int c = 1; c <= 0x7E; c += 5) d.push_back(DecodeE4M3(c) * (1.0f / 2688.0f));  // NVFP4-like
  for (int e = 0; e < 255; e += 9) d.push_back(DecodeUE8M0(e));                      // MXFP4
  for (int i = 0; i < 40; ++i) d.push_back(std::exp2(u(rng)) * (1.0f + 0.1f * i));
  d.insert(d.end(), {1.0f, 0x1p-149f, 1e-40f, 3e38f, 448.0f * 1e-30f});
  return d;
}

TEST(E2M1Thresholds, MatchDivisionForEveryBf16AndF16Value) {
  for (float d : Divisors()) {
    const auto tb = E2M1Thresholds(d, DType::kBF16), th = E2M1Thresholds(d, DType::kF16);
    for (uint32_t bits = 0; bits < 65536; ++bits) {
      const float xb = DecodeBF16(static_cast<uint16_t>(bits)), xh = DecodeF16(static_cast<uint16_t>(bits));
      if (std::isfinite(xb)) {
        ASSERT_EQ(EncodeWithThresholds(bits, 16, tb), EncodeE2M1(xb / d)) << xb << " / " << d;
      }
      if (std::isfinite(xh)) {
        ASSERT_EQ(EncodeWithThresholds(bits, 16, th), EncodeE2M1(xh / d)) << xh << " / " << d;
      }
    }
  }
}

TEST(E2M1Thresholds, MatchDivisionForFloat32AroundEveryBoundary) {
  std::mt19937 rng(9);
  for (float d : Divisors()) {
    const auto t = E2M1Thresholds(d, DType::kF32);
    std::vector<uint32_t> patterns;
    for (int32_t threshold : t) {
      for (int delta = -3; delta <= 3; ++delta) patterns.push_back(static_cast<uint32_t>(threshold + delta) & 0x7FFFFFFF);
    }
    for (int i = 0; i < 2000; ++i) patterns.push_back(std::bit_cast<uint32_t>(std::ldexp(static_cast<float>(rng()) / 4e9f, -3) * 8.0f * d));
    for (uint32_t p : patterns) {
      for (uint32_t bits : {p, p | 0x80000000u}) {
        const float x = std::bit_cast<float>(bits);
        if (!std::isfinite(x)) continue;
        ASSERT_EQ(EncodeWithThresholds(bits, 32, t), EncodeE2M1(x / d)) << x << " / " << d;
      }
    }
  }
}

}  // namespace
}  // namespace fp4forge::cpu
