#include "fp4forge/cpu/e2m1_thresholds.h"

#include <bit>
#include <cmath>

#include "fp4forge/codec/half.h"

namespace fp4forge::cpu {

namespace {

// Smallest (round_up) or largest value of the input grid >= / <= b > 0, as its bit pattern.
int32_t RoundOntoGrid(double b, DType input, bool round_up) {
  float f = static_cast<float>(b);  // to nearest, then step once if it went the wrong way
  if (round_up && static_cast<double>(f) < b) f = std::nextafter(f, INFINITY);
  if (!round_up && static_cast<double>(f) > b) f = std::nextafter(f, 0.0f);
  const uint32_t bits = std::bit_cast<uint32_t>(f);
  switch (input) {
    case DType::kF32:
      return static_cast<int32_t>(bits);
    case DType::kBF16:  // the bf16 grid is float32 with the low 16 bits zero
      return static_cast<int32_t>((bits >> 16) + (round_up && (bits & 0xFFFF) ? 1 : 0));
    case DType::kF16: {
      int32_t h = EncodeF16(f);
      if (round_up && DecodeF16(static_cast<uint16_t>(h)) < f) ++h;   // 0x7BFF + 1 = Inf: still right
      if (!round_up && DecodeF16(static_cast<uint16_t>(h)) > f) --h;
      return h;
    }
  }
  return 0;
}

}  // namespace

std::array<int32_t, 8> E2M1Thresholds(float d, DType input) {
  // codec/e2m1.h's thresholds and whether a value equal to it moves up (">=") or stays (">").
  struct Decision {
    float t;
    bool inclusive;
  };
  constexpr Decision kDecisions[kE2M1MagnitudeThresholds] = {
      {0.25f, false}, {0.75f, true}, {1.25f, false}, {1.75f, true}, {2.5f, false}, {3.5f, true}, {5.0f, false}};
  std::array<int32_t, 8> thresholds{};
  for (int i = 0; i < kE2M1MagnitudeThresholds; ++i) {
    const Decision& c = kDecisions[i];
    // fl(y) >= t  <=>  y >= midpoint(pred(t), t): every t has an even mantissa, so the tie rounds to t.
    // fl(y) > t   <=>  y >  midpoint(t, succ(t)): the tie rounds back to the even t.
    const double neighbour = std::nextafter(c.t, c.inclusive ? 0.0f : INFINITY);
    const double boundary = 0.5 * (static_cast<double>(c.t) + neighbour) * d;  // exact
    // |x| >= B <=> abs_bits > bits(ceil(B)) - 1;  |x| > B <=> abs_bits > bits(floor(B)).
    thresholds[i] = c.inclusive ? RoundOntoGrid(boundary, input, true) - 1 : RoundOntoGrid(boundary, input, false);
  }
  // fl(x / d) < 0 <=> x < 0 and |x| / d > 2^-150 (at 2^-150 the tie rounds to the even +0).
  thresholds[7] = RoundOntoGrid(std::ldexp(static_cast<double>(d), -150), input, false);
  return thresholds;
}

}  // namespace fp4forge::cpu
