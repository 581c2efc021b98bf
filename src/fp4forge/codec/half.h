// BF16 and FP16 <-> FP32, round to nearest even (as PyTorch, NumPy and ml_dtypes).
#pragma once

#include <bit>
#include <cstdint>

#include "fp4forge/codec/rounding.h"

namespace fp4forge {

constexpr float DecodeBF16(uint16_t bits) { return std::bit_cast<float>(static_cast<uint32_t>(bits) << 16); }

constexpr uint16_t EncodeBF16(float x) {
  uint32_t bits = std::bit_cast<uint32_t>(x);
  if ((bits & 0x7FFFFFFF) > 0x7F800000) return static_cast<uint16_t>((bits >> 16) | 0x0040);  // quiet NaN
  bits += 0x7FFF + ((bits >> 16) & 1);  // ties to even on the 16 dropped bits
  return static_cast<uint16_t>(bits >> 16);
}

constexpr float DecodeF16(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const uint32_t exponent = (h >> 10) & 0x1F;
  const uint32_t mantissa = h & 0x3FF;
  if (exponent == 0) {  // zero or subnormal: mantissa * 2^-24, exact in float32
    const float magnitude = static_cast<float>(mantissa) * 0x1p-24f;
    return sign ? -magnitude : magnitude;
  }
  if (exponent == 0x1F) return std::bit_cast<float>(sign | 0x7F800000 | (mantissa << 13));  // Inf/NaN
  return std::bit_cast<float>(sign | ((exponent + 112) << 23) | (mantissa << 13));  // rebias 15 -> 127
}

constexpr uint16_t EncodeF16(float x) {
  const uint32_t bits = std::bit_cast<uint32_t>(x);
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000);
  const uint32_t magnitude_bits = bits & 0x7FFFFFFF;
  if (magnitude_bits > 0x7F800000) return sign | 0x7E00;    // NaN -> quiet NaN
  if (magnitude_bits >= 0x477FF000) return sign | 0x7C00;   // >= 65520 rounds to Inf (65504 is odd)
  if (magnitude_bits < 0x38800000) {                        // below 2^-14: subnormal, steps of 2^-24
    return sign | static_cast<uint16_t>(RoundHalfEven(std::bit_cast<float>(magnitude_bits) * 0x1p24f));
  }
  uint32_t r = magnitude_bits - (112u << 23);  // rebias 127 -> 15
  r += 0xFFF + ((r >> 13) & 1);               // ties to even on the 13 dropped bits
  return sign | static_cast<uint16_t>(r >> 13);
}

}  // namespace fp4forge
