// Exact E2M1 encoding without a division per element.
//
// Reference quantizers encode fl(x / d) with the E2M1 decision thresholds of codec/e2m1.h. Since
// x -> fl(x / d) is monotonic, each decision "fl(|x| / d) passes threshold t" is equivalent to
// "|x| passes some boundary B_t = m_t · d", where m_t is the float32 rounding midpoint next to t;
// B_t is exact in float64 (25 + 24 significant bits). Rounding B_t up or down onto the input
// format's own grid (float32, bf16 or f16) turns each decision into an integer comparison of the
// input's bit pattern: abs_bits(x) > T_t. The divisor depends only on the block's scale code, so a
// tensor needs at most 255 such rows, computed once.
#pragma once

#include <array>
#include <cstdint>

#include "fp4forge/base/dtype.h"

namespace fp4forge::cpu {

inline constexpr int kE2M1MagnitudeThresholds = 7;

// T[0..6]: EncodeE2M1Magnitude(fl(|x| / d)) == sum over t of [abs_bits(x) > T[t]];
// T[7]:    (fl(x / d) < 0)                  == [x < 0 and abs_bits(x) > T[7]],
// for every finite x of `input` (bit patterns read as integers of its width) and finite d > 0.
std::array<int32_t, 8> E2M1Thresholds(float d, DType input);

}  // namespace fp4forge::cpu
