#include "fp4forge/format/int4_group.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "fp4forge/codec/e2m1.h"
#include "fp4forge/codec/half.h"
#include "fp4forge/codec/rounding.h"

namespace fp4forge {

float DecodeScale16(uint16_t bits, DType scale_dtype) {
  return scale_dtype == DType::kBF16 ? DecodeBF16(bits) : DecodeF16(bits);
}

uint16_t EncodeScale16(float value, DType scale_dtype) {
  return scale_dtype == DType::kBF16 ? EncodeBF16(value) : EncodeF16(value);
}

Int4GroupScale ComputeInt4GroupScale(float lo, float hi, const Int4GroupParams& params) {
  const float raw_scale = params.asymmetric ? (hi - lo) / 15.0f : std::max(hi, -lo) / 7.0f;
  uint16_t scale_bits = EncodeScale16(raw_scale, params.scale_dtype);
  if (DecodeScale16(scale_bits, params.scale_dtype) == 0.0f) scale_bits = EncodeScale16(1.0f, params.scale_dtype);
  const float scale = DecodeScale16(scale_bits, params.scale_dtype);
  const int32_t zero_point =
      params.asymmetric ? std::clamp(RoundHalfEvenSigned(-lo / scale), 0, 15) : kInt4SymmetricZeroPoint;
  return {scale_bits, scale, zero_point};
}

uint8_t EncodeInt4Value(float x, const Int4GroupScale& s) {
  return static_cast<uint8_t>(std::clamp(RoundHalfEvenSigned(x / s.scale) + s.zero_point, 0, 15));
}

void QuantizeInt4RowRef(const float* x, int64_t cols, const Int4GroupParams& params, uint8_t* codes,
                        uint16_t* scales, uint8_t* zero_points) {
  const int g = params.group_size;
  std::vector<uint8_t> nibbles(g);
  for (int64_t group = 0; group < cols / g; ++group) {
    const float* v = x + group * g;
    float lo = 0.0f, hi = 0.0f;
    for (int k = 0; k < g; ++k) {
      lo = std::min(lo, v[k]);
      hi = std::max(hi, v[k]);
    }
    const Int4GroupScale s = ComputeInt4GroupScale(lo, hi, params);
    scales[group] = s.scale_bits;
    if (params.asymmetric) zero_points[group] = static_cast<uint8_t>(s.zero_point);
    for (int k = 0; k < g; ++k) nibbles[k] = EncodeInt4Value(v[k], s);
    for (int k = 0; k < g; k += 2) codes[(group * g + k) / 2] = PackNibbles(nibbles[k], nibbles[k + 1]);
  }
}

void DequantizeInt4RowRef(const uint8_t* codes, const uint16_t* scales, const uint8_t* zero_points,
                          int64_t cols, const Int4GroupParams& params, float* x) {
  const int g = params.group_size;
  for (int64_t k = 0; k < cols; k += 2) {
    const int64_t group = k / g;
    const float scale = DecodeScale16(scales[group], params.scale_dtype);
    const int zero_point = params.asymmetric ? zero_points[group] : kInt4SymmetricZeroPoint;
    x[k] = static_cast<float>(LowNibble(codes[k / 2]) - zero_point) * scale;
    x[k + 1] = static_cast<float>(HighNibble(codes[k / 2]) - zero_point) * scale;
  }
}

}  // namespace fp4forge
