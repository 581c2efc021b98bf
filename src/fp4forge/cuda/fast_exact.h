// Faster ways to the quantizers' exact results, for the GPU kernels: E2M1 rounding without seven
// comparisons or a table, and x / d from a reciprocal. Host and device code alike, so that the CPU
// tests (fast_exact_test.cc) check them against the references where CI runs: every float for
// the rounding, 10^8 random pairs with hostile exponents for the division.
#pragma once

#include <cmath>
#include <cstdint>

#include "fp4forge/cuda/host_device.h"

namespace fp4forge::cuda {

// E2M1 rounding of a >= 0 (NaN excluded) by the grid's three binades: a·2 in [0, 2), a in [2, 4),
// a/2 in [4, 6] (6 beyond) rounded to an integer, ties to even, as rintf does; the same as
// EncodeE2M1Magnitude's thresholds. The code is that integer plus 0, 2 or 4; the value is the
// integer times 1/2, 1 or 2 (both exact).
struct E2M1Rounded {
  uint8_t code;
  float value;
};
FP4FORGE_HOST_DEVICE E2M1Rounded RoundE2M1Magnitude(float a) {
  a = fminf(a, 6.0f);
  const bool low = a < 2.0f, mid = a < 4.0f;
  const float steps = rintf(a * (low ? 2.0f : mid ? 1.0f : 0.5f));
  return {static_cast<uint8_t>(static_cast<int>(steps) + (low ? 0 : mid ? 2 : 4)), steps * (low ? 0.5f : mid ? 1.0f : 2.0f)};
}

// x / d (d > 0) rounded as IEEE division, given r = 1/d: q0 = x·r is within an ulp of x/d, and one
// correction, q0 + (x - q0·d)·r with the residual exact by fma, rounds to exactly x/d (Markstein's
// theorem). Where underflow or overflow could spoil it (|x| outside [2^-70, 2^100], |q0| or d
// outside [2^-100, 2^100]) the division is done as written.
FP4FORGE_HOST_DEVICE float Divide(float x, float d, float r) {
  if (x == 0.0f) return x;  // x / d, also where r is infinite
  const float q0 = x * r, ax = fabsf(x), aq = fabsf(q0);
  if (!(ax >= 0x1p-70f && ax <= 0x1p100f && aq >= 0x1p-100f && aq <= 0x1p100f && d >= 0x1p-100f && d <= 0x1p100f)) {
    return x / d;
  }
  return fmaf(fmaf(-q0, d, x), r, q0);
}

}  // namespace fp4forge::cuda
