// Exhaustive codec tests: every code of every format, every rounding boundary and tie, against
// FORMATS.md §7 and against independent brute-force references written here.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <vector>

#include <gtest/gtest.h>

#include "fp4forge/codec/e2m1.h"
#include "fp4forge/codec/e4m3.h"
#include "fp4forge/codec/half.h"
#include "fp4forge/codec/int4.h"
#include "fp4forge/codec/ue8m0.h"

namespace fp4forge {
namespace {

// ---- E2M1 -------------------------------------------------------------------------------------

TEST(E2M1, DecodesTheSixteenCodesOfTV1) {
  const float expected[16] = {0, 0.5, 1, 1.5, 2, 3, 4, 6, -0.0f, -0.5, -1, -1.5, -2, -3, -4, -6};
  for (int c = 0; c < 16; ++c) {
    EXPECT_EQ(DecodeE2M1(c), expected[c]) << c;
    EXPECT_EQ(std::signbit(DecodeE2M1(c)), c >= 8) << c;
  }
}

TEST(E2M1, EncodesTV2RoundToNearestEven) {
  const struct { float x; uint8_t code; } cases[] = {
      {0.25f, 0x0}, {0.75f, 0x2}, {1.25f, 0x2}, {1.75f, 0x4}, {2.5f, 0x4}, {3.5f, 0x6}, {5.0f, 0x6}, {7.0f, 0x7},
      {0.3f, 0x1},  {0.6f, 0x1},  {0.9f, 0x2},  {1.3f, 0x3},  {1.8f, 0x4}, {2.7f, 0x5}, {4.5f, 0x6},
      {-0.25f, 0x8}, {-0.75f, 0xA}, {-0.1f, 0x8}, {0.0f, 0x0}, {-0.0f, 0x0}, {-5.0f, 0xE}, {1e30f, 0x7}, {-1e30f, 0xF}};
  for (const auto& c : cases) EXPECT_EQ(EncodeE2M1(c.x), c.code) << c.x;
}

TEST(E2M1, EncodesModelOptCastFp4EquivalenceVectors) {
  // ModelOpt tests/gpu/torch/quantization/test_qtensor_cuda.py::test_cast_fp4_equivalence, codes
  // as listed in FORMATS.md TV-2.
  const std::vector<std::pair<std::vector<float>, std::vector<uint8_t>>> cases = {
      {{0.25, 0.75, 1.25, 1.75, 2.5, 3.5}, {0, 2, 2, 4, 4, 6}},
      {{0.1, 2.5, 1.0, 4.8, 1.5, 1.25, 3.25, 5.0}, {0, 4, 2, 6, 3, 2, 5, 6}},
      {{0, 0.75, 1.25, 1.75, 2.5, 5.5}, {0, 2, 2, 4, 4, 7}},
      {{-0.25, -0.75, -1.25, -1.75, -2.5, -3.5}, {8, 0xA, 0xA, 0xC, 0xC, 0xE}},
      {{-0.1, -2.5, -1.0, -4.8, -1.5, -1.25, -3.25, -5.0}, {8, 0xC, 0xA, 0xE, 0xB, 0xA, 0xD, 0xE}},
      {{0, -0.75, -1.25, -1.75, -2.5, -5.5}, {0, 0xA, 0xA, 0xC, 0xC, 0xF}}};
  for (const auto& [xs, codes] : cases) {
    for (size_t i = 0; i < xs.size(); ++i) EXPECT_EQ(EncodeE2M1(xs[i]), codes[i]) << xs[i];
  }
}

// Independent reference: the nearest of the 8 magnitudes, ties to the even code, then the sign.
uint8_t NearestE2M1(float x) {
  const float a = std::fabs(x);
  int best = 0;
  for (int c = 1; c < 8; ++c) {
    const float d_best = std::fabs(a - DecodeE2M1(best)), d = std::fabs(a - DecodeE2M1(c));
    if (d < d_best || (d == d_best && c % 2 == 0)) best = c;
  }
  return static_cast<uint8_t>(best | (x < 0 ? 8 : 0));
}

TEST(E2M1, MatchesBruteForceNearestOnAFineGridAndAtEveryMidpoint) {
  std::vector<float> xs;
  for (int i = -8000; i <= 8000; ++i) xs.push_back(i * 0.001f);
  for (int c = 0; c < 7; ++c) {  // midpoints and their float neighbours
    const float mid = 0.5f * (DecodeE2M1(c) + DecodeE2M1(c + 1));
    for (float m : {mid, -mid}) {
      xs.insert(xs.end(), {m, std::nextafter(m, 0.0f), std::nextafter(m, 100.0f), std::nextafter(m, -100.0f)});
    }
  }
  for (float x : xs) ASSERT_EQ(EncodeE2M1(x), NearestE2M1(x)) << x;
}

TEST(E2M1, RoundTripsEveryCodeExceptNegativeZero) {
  for (int c = 0; c < 16; ++c) {
    EXPECT_EQ(EncodeE2M1(DecodeE2M1(c)), c == 8 ? 0 : c) << c;
  }
}

TEST(E2M1, PacksTV5CompressedTensorsRows) {
  const std::vector<std::pair<std::vector<float>, std::vector<uint8_t>>> rows = {
      {{-0.5, -6, -0.5, -1.5, -1, 6, 0, -0.0f}, {0xF9, 0xB9, 0x7A, 0x80}},
      {{-1, -6, -0.5, -0.0f, 0.5, 0.5, -0.0f, 0}, {0xFA, 0x89, 0x11, 0x08}},
      {{-3, -6, -0.5, -2, -0.5, -1.5, -0.0f, -0.0f}, {0xFD, 0xC9, 0xB9, 0x88}},
      {{1.5, 6, -0.0f, -0.5, 1, 1, -0.0f, 0}, {0x73, 0x98, 0x22, 0x08}}};
  // compressed-tensors keeps the sign of -0.0, so encode the sign bit as that test does.
  auto code = [](float v) { return static_cast<uint8_t>(EncodeE2M1(std::fabs(v)) | (std::signbit(v) ? 8 : 0)); };
  for (const auto& [values, bytes] : rows) {
    for (size_t k = 0; k < bytes.size(); ++k) {
      const uint8_t packed = PackNibbles(code(values[2 * k]), code(values[2 * k + 1]));
      EXPECT_EQ(packed, bytes[k]);
      EXPECT_EQ(DecodeE2M1(LowNibble(packed)), values[2 * k]);
      EXPECT_EQ(DecodeE2M1(HighNibble(packed)), values[2 * k + 1]);
    }
  }
}

// ---- E4M3 -------------------------------------------------------------------------------------

float IndependentE4M3Value(int code) {  // value formula straight from the bit layout
  const int s = code >> 7, e = (code >> 3) & 0xF, m = code & 7;
  const double v = e == 0 ? std::ldexp(m, -9) : std::ldexp(8 + m, e - 10);
  return static_cast<float>(s ? -v : v);
}

TEST(E4M3, DecodesAll256Codes) {
  for (int c = 0; c < 256; ++c) {
    if ((c & 0x7F) == 0x7F) {
      EXPECT_TRUE(std::isnan(DecodeE4M3(c))) << c;
    } else {
      EXPECT_EQ(DecodeE4M3(c), IndependentE4M3Value(c)) << c;
    }
  }
  EXPECT_EQ(DecodeE4M3(0x7E), 448.0f);
  EXPECT_EQ(DecodeE4M3(0x08), 0x1p-6f);
  EXPECT_EQ(DecodeE4M3(0x01), 0x1p-9f);
  EXPECT_EQ(DecodeE4M3(0x20), 0.125f);
}

TEST(E4M3, EncodesTV3LikePyTorch) {
  const struct { float x; uint8_t code; } cases[] = {
      {0.0f, 0x00}, {-0.0f, 0x80}, {0x1p-9f, 0x01}, {0x1p-10f, 0x00}, {1.5f * 0x1p-10f, 0x01}, {0x1p-6f, 0x08},
      {1.0f, 0x38}, {1.0625f, 0x38}, {1.125f, 0x39}, {6.0f, 0x4C}, {240.0f, 0x77}, {256.0f, 0x78}, {300.0f, 0x79},
      {416.0f, 0x7D}, {448.0f, 0x7E}, {449.0f, 0x7E}, {463.9f, 0x7E}, {464.0f, 0x7E}, {465.0f, 0x7F}, {479.0f, 0x7F},
      {480.0f, 0x7F}, {1e9f, 0x7F}, {INFINITY, 0x7F}, {NAN, 0x7F}, {0.125f, 0x20}, {0.5f, 0x30}, {128.0f, 0x70},
      {22.0f, 0x5B}, {32.0f, 0x60}, {21.333334f, 0x5B}, {-448.0f, 0xFE}, {-INFINITY, 0xFF}};
  for (const auto& c : cases) EXPECT_EQ(EncodeE4M3(c.x), c.code) << c.x;
}

TEST(E4M3, RoundTripsEveryFiniteCode) {
  for (int c = 0; c < 256; ++c) {
    if ((c & 0x7F) != 0x7F) {
      EXPECT_EQ(EncodeE4M3(DecodeE4M3(c)), c) << c;
    }
  }
}

// Independent reference on [0, 448]: nearest grid value, ties to the even code.
uint8_t NearestE4M3(float a, const std::vector<float>& grid) {
  const auto hi = std::lower_bound(grid.begin(), grid.end(), a);
  const int h = static_cast<int>(hi - grid.begin());
  if (grid[h] == a || h == 0) return static_cast<uint8_t>(h);
  const int l = h - 1;
  const float dl = a - grid[l], dh = grid[h] - a;
  return static_cast<uint8_t>(dl < dh ? l : dh < dl ? h : (l % 2 == 0 ? l : h));
}

TEST(E4M3, MatchesBruteForceNearestOnStridedFloatsAndAllMidpoints) {
  std::vector<float> grid;
  for (int c = 0; c <= 0x7E; ++c) grid.push_back(DecodeE4M3(c));
  std::vector<uint32_t> patterns;
  for (uint32_t bits = 0; bits <= std::bit_cast<uint32_t>(448.0f); bits += 4099) patterns.push_back(bits);
  for (size_t i = 0; i + 1 < grid.size(); ++i) {  // every midpoint and 4 floats either side
    const uint32_t mid = std::bit_cast<uint32_t>(0.5f * (grid[i] + grid[i + 1]));
    for (uint32_t d = 0; d <= 8; ++d) patterns.push_back(mid - 4 + d);
  }
  for (uint32_t bits : patterns) {
    const float a = std::bit_cast<float>(bits);
    ASSERT_EQ(EncodeE4M3(a), NearestE4M3(a, grid)) << a;
    ASSERT_EQ(EncodeE4M3(-a), NearestE4M3(a, grid) | 0x80) << -a;
  }
}

// ---- UE8M0 ------------------------------------------------------------------------------------

TEST(UE8M0, DecodesEveryByteAsAPowerOfTwo) {
  for (int e = 0; e < 255; ++e) {
    EXPECT_EQ(DecodeUE8M0(e), std::ldexp(1.0f, e - 127)) << e;
  }
  EXPECT_TRUE(std::isnan(DecodeUE8M0(0xFF)));
  EXPECT_EQ(EncodeUE8M0Exponent(0), 127);
  EXPECT_EQ(EncodeUE8M0Exponent(-127), 0);
}

// ---- BF16 / FP16 ------------------------------------------------------------------------------

TEST(BF16, DecodesAndRoundTripsAllCodes) {
  for (uint32_t b = 0; b < 65536; ++b) {
    const float v = DecodeBF16(static_cast<uint16_t>(b));
    ASSERT_EQ(std::bit_cast<uint32_t>(v), b << 16);
    if (!std::isnan(v)) {
      ASSERT_EQ(EncodeBF16(v), b);
    }
  }
}

TEST(BF16, RoundsTiesToEven) {
  EXPECT_EQ(EncodeBF16(std::bit_cast<float>(0x3F808000u)), 0x3F80);  // tie, even stays
  EXPECT_EQ(EncodeBF16(std::bit_cast<float>(0x3F818000u)), 0x3F82);  // tie, odd rounds up
  EXPECT_EQ(EncodeBF16(std::bit_cast<float>(0x3F808001u)), 0x3F81);
  EXPECT_EQ(EncodeBF16(std::bit_cast<float>(0x7F7FFFFFu)), 0x7F80);  // FLT_MAX rounds to Inf
  EXPECT_EQ(EncodeBF16(NAN) & 0x7FC0, 0x7FC0);
}

float IndependentF16Value(uint16_t h) {
  const int s = h >> 15, e = (h >> 10) & 0x1F, m = h & 0x3FF;
  if (e == 31) return m ? NAN : (s ? -INFINITY : INFINITY);
  const double v = e == 0 ? std::ldexp(m, -24) : std::ldexp(1024 + m, e - 25);
  return static_cast<float>(s ? -v : v);
}

TEST(F16, DecodesAndRoundTripsAllCodes) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float v = DecodeF16(static_cast<uint16_t>(h));
    const float ref = IndependentF16Value(static_cast<uint16_t>(h));
    if (std::isnan(ref)) {
      ASSERT_TRUE(std::isnan(v));
      continue;
    }
    ASSERT_EQ(std::bit_cast<uint32_t>(v), std::bit_cast<uint32_t>(ref)) << h;
    ASSERT_EQ(EncodeF16(v), h);
  }
}

TEST(F16, RoundsTiesToEvenAndOverflowsToInf) {
  EXPECT_EQ(EncodeF16(65504.0f), 0x7BFF);
  EXPECT_EQ(EncodeF16(65519.0f), 0x7BFF);
  EXPECT_EQ(EncodeF16(65520.0f), 0x7C00);
  EXPECT_EQ(EncodeF16(0x1p-25f), 0x0000);          // half the smallest subnormal: tie to even (0)
  EXPECT_EQ(EncodeF16(0x1.8p-24f), 0x0002);        // 1.5 subnormal steps: tie to even (2)
  EXPECT_EQ(EncodeF16(1.0f + 0x1p-11f), 0x3C00);   // tie between 1 and 1+2^-10: even
  EXPECT_EQ(EncodeF16(1.0f + 0x1.8p-10f), 0x3C02);  // tie between odd and even mantissa: up
  EXPECT_EQ(EncodeF16(-2.0f), 0xC000);
}

// ---- INT4 -------------------------------------------------------------------------------------

TEST(Int4, EncodesTwosComplementNibbles) {
  for (int v = -8; v <= 7; ++v) {
    EXPECT_EQ(DecodeInt4(EncodeInt4(v)), v);
    EXPECT_LT(EncodeInt4(v), 16);
  }
  EXPECT_EQ(EncodeInt4(-1), 0xF);
  EXPECT_EQ(EncodeInt4(-8), 0x8);
}

}  // namespace
}  // namespace fp4forge
