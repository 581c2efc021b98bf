// FP8 E4M3FN: 1 sign, 4 exponent (bias 7), 3 mantissa bits; no Inf; 0x7F/0xFF are NaN.
// Max finite 448 (0x7E), min normal 2^-6 (0x08), min subnormal 2^-9 (0x01). FORMATS.md §2.1.
#pragma once

#include <bit>
#include <cstdint>
#include <limits>

#include "fp4forge/codec/rounding.h"

namespace fp4forge {

inline constexpr float kE4M3Max = 448.0f;
inline constexpr float kE4M3MinSubnormal = 0x1p-9f;
inline constexpr uint8_t kE4M3MaxCode = 0x7E;  // 448; also the largest positive code

constexpr float DecodeE4M3(uint8_t code) {
  const uint32_t exponent = (code >> 3) & 0xF;
  const uint32_t mantissa = code & 0x7;
  if (exponent == 0xF && mantissa == 0x7) return std::numeric_limits<float>::quiet_NaN();
  // Normal: rebias 7 -> 127 and move the 3 mantissa bits to the top of float32's 23.
  const float magnitude = exponent == 0
                              ? static_cast<float>(mantissa) * kE4M3MinSubnormal
                              : std::bit_cast<float>(((exponent + 120) << 23) | (mantissa << 20));
  return (code & 0x80) ? -magnitude : magnitude;
}

// Bit-identical to PyTorch's x.to(torch.float8_e4m3fn): round to nearest even, NOT saturating
// (|x| > 464 rounds to 0x7F = NaN, Inf and NaN give NaN). Callers clamp to [-448, 448] first.
// Example: 1.0625 -> 0x38 (tie to even 1.0), 21.333 -> 0x5B (22), 2^-10 -> 0x00 (tie to even).
constexpr uint8_t EncodeE4M3(float x) {
  const uint32_t bits = std::bit_cast<uint32_t>(x);
  const uint8_t sign = static_cast<uint8_t>((bits >> 24) & 0x80);
  const uint32_t magnitude_bits = bits & 0x7FFFFFFF;
  if (magnitude_bits >= 0x43F00000) return sign | 0x7F;  // >= 480 (the first value past NaN), Inf, NaN
  if (magnitude_bits < 0x3C800000) {                     // below 2^-6: subnormal, steps of 2^-9
    return sign | static_cast<uint8_t>(RoundHalfEven(std::bit_cast<float>(magnitude_bits) * 512.0f));
  }
  // Normal: rebias the exponent (127 -> 7), then round the 23-bit mantissa to 3 bits, ties to even:
  // adding 0x7FFFF (+1 when the kept lsb is odd) carries into bit 20 exactly when rounding up.
  uint32_t r = magnitude_bits - (120u << 23);
  r += 0x7FFFF + ((r >> 20) & 1);
  return sign | static_cast<uint8_t>(r >> 20);
}

}  // namespace fp4forge
