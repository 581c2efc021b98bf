// fast_exact.h against the references, on the CPU (no GPU needed).
#include "fp4forge/cuda/fast_exact.h"

#include <bit>
#include <cstdint>
#include <random>

#include <gtest/gtest.h>

#include "fp4forge/codec/e2m1.h"

namespace fp4forge::cuda {
namespace {

TEST(FastExact, E2M1RoundingEqualsEncodeE2M1MagnitudeOnEveryFloat) {
  for (uint32_t bits = 0; bits <= 0x7F800000u; ++bits) {  // 0 .. +infinity
    const float a = std::bit_cast<float>(bits);
    const E2M1Rounded got = RoundE2M1Magnitude(a);
    const uint8_t want = EncodeE2M1Magnitude(a);
    if (got.code != want || got.value != DecodeE2M1(want)) FAIL() << a << ": code " << int{got.code} << ", want " << int{want};
  }
}

// Divisors of every positive finite exponent (denormals too), mantissas biased to all ones and all
// zeros; dividends of any finite value or within 2^±8 of the divisor, where quotients sit near 1.
TEST(FastExact, DivideEqualsIeeeDivision) {
  std::mt19937_64 rng(2);
  int64_t checked = 0;
  while (checked < 100'000'000) {
    const uint64_t r = rng(), r2 = rng();
    uint32_t mantissa = static_cast<uint32_t>(r >> 8) & 0x7FFFFFu;
    if ((r & 3) == 0) mantissa = 0x7FFFFFu;
    if ((r & 3) == 1) mantissa = 0;
    if ((r & 3) == 2) mantissa |= 0x7FFF00u;
    const uint32_t exponent = (r2 & (1ull << 40)) ? static_cast<uint32_t>((r2 >> 8) % 60 + 97) : static_cast<uint32_t>(r2 % 255);
    const float d = std::bit_cast<float>(exponent << 23 | mantissa);
    uint32_t x_bits = static_cast<uint32_t>(rng());
    if (r2 & (1ull << 41)) {
      const int e = static_cast<int>(exponent) + static_cast<int>((r2 >> 16) % 16) - 8;
      if (e < 1 || e > 254) continue;
      x_bits = (x_bits & 0x807FFFFFu) | static_cast<uint32_t>(e) << 23;
    }
    if (d == 0.0f || (x_bits & 0x7F800000u) == 0x7F800000u) continue;
    const float x = std::bit_cast<float>(x_bits);
    ASSERT_EQ(std::bit_cast<uint32_t>(Divide(x, d, 1.0f / d)), std::bit_cast<uint32_t>(x / d)) << x << " / " << d;
    ++checked;
  }
}

}  // namespace
}  // namespace fp4forge::cuda
