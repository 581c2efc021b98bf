// UE8M0 (float8_e8m0fnu), the MX shared scale: value 2^(e - 127) for e = 0..254, 0xFF = NaN,
// no sign, no zero. Stored as U8 on disk. FORMATS.md §2.3.
#pragma once

#include <bit>
#include <cstdint>
#include <limits>

namespace fp4forge {

inline constexpr int kUE8M0Bias = 127;

constexpr float DecodeUE8M0(uint8_t e) {
  if (e == 0xFF) return std::numeric_limits<float>::quiet_NaN();
  // e = 0 is 2^-127, a float32 subnormal (bits 0x00400000); otherwise e is the float32 exponent.
  return std::bit_cast<float>(e == 0 ? 0x00400000u : static_cast<uint32_t>(e) << 23);
}

// Stores the power-of-two exponent k (2^k) as a byte; k must be in [-127, 127].
constexpr uint8_t EncodeUE8M0Exponent(int k) { return static_cast<uint8_t>(k + kUE8M0Bias); }

}  // namespace fp4forge
