// E2M1 (FP4): 1 sign, 2 exponent (bias 1), 1 mantissa bit; no Inf/NaN. docs: FORMATS.md §1.
#pragma once

#include <array>
#include <cstdint>

namespace fp4forge {

inline constexpr float kE2M1Max = 6.0f;

// FORMATS.md §1.1: codes 0x0..0x7 are +{0, 0.5, 1, 1.5, 2, 3, 4, 6}; bit 3 is the sign (0x8 = -0).
inline constexpr std::array<float, 16> kE2M1Values = {
    0.0f,  0.5f,  1.0f,  1.5f,  2.0f,  3.0f,  4.0f,  6.0f,
    -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f};

constexpr float DecodeE2M1(uint8_t code) { return kE2M1Values[code & 0xF]; }

// Magnitude code 0..7 of |a| (a >= 0): round to nearest, ties to even, saturating at 6 (§1.2-1.3).
// Each comparison is one decision threshold; ">=" where the tie goes up to an even code, ">" where
// it stays down. Example: 0.75 -> 2 (1.0), 1.25 -> 2 (1.0), 5.0 -> 6 (4.0), 7.0 -> 7 (6.0).
constexpr uint8_t EncodeE2M1Magnitude(float a) {
  return static_cast<uint8_t>((a > 0.25f) + (a >= 0.75f) + (a > 1.25f) + (a >= 1.75f) +
                              (a > 2.5f) + (a >= 3.5f) + (a > 5.0f));
}

// ModelOpt's _cast_fp4 exactly (§1.2-1.5): the sign bit is (x < 0), so a small negative value that
// rounds to zero encodes as 0x8 while +0 and -0 encode as 0x0. NaN must be rejected by the caller.
constexpr uint8_t EncodeE2M1(float x) {
  const bool negative = x < 0.0f;
  return static_cast<uint8_t>(EncodeE2M1Magnitude(negative ? -x : x) | (negative ? 0x8 : 0x0));
}

// Two codes in one byte, canonical order (§1.6): element 2k in the low nibble, 2k+1 in the high.
constexpr uint8_t PackNibbles(uint8_t even, uint8_t odd) {
  return static_cast<uint8_t>((even & 0xF) | (odd << 4));
}
constexpr uint8_t LowNibble(uint8_t byte) { return byte & 0xF; }
constexpr uint8_t HighNibble(uint8_t byte) { return byte >> 4; }

}  // namespace fp4forge
