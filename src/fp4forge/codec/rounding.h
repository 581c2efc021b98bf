// Rounding helpers shared by the codecs.
#pragma once

#include <cstdint>

namespace fp4forge {

// Round-half-to-even of a finite, non-negative float below 2^23 (the rounding every reference
// quantizer uses). constexpr, unlike std::nearbyint. Example: 0.5 -> 0, 1.5 -> 2, 2.5 -> 2.
constexpr int32_t RoundHalfEven(float a) {
  int32_t q = static_cast<int32_t>(a);  // truncation == floor for a >= 0
  const float frac = a - static_cast<float>(q);  // exact: a and q share the exponent range
  if (frac > 0.5f || (frac == 0.5f && (q & 1))) ++q;
  return q;
}

// Signed variant: rounds |a| half-to-even and restores the sign (torch.round, numpy.rint).
constexpr int32_t RoundHalfEvenSigned(float a) {
  return a < 0 ? -RoundHalfEven(-a) : RoundHalfEven(a);
}

}  // namespace fp4forge
