// INT4 with one FP16/BF16 scale per group of 32, 64 or 128 along a row (GPTQ/AWQ-style layouts).
// Codes are unsigned nibbles 0..15 and x ~= (code - zero_point) · scale:
//  - symmetric:  scale = amax/7, zero point fixed at 8 (the "uint4b8" convention of GPTQ/Marlin),
//                so codes 1..15 carry -7..7;
//  - asymmetric: scale = (max - min)/15 over the group's range widened to include 0, and a per-group
//                zero point round(-min/scale) in 0..15.
// The scale is rounded to its storage dtype first and the rounded value is the one quantized with,
// so dequantization reproduces the quantizer's grid. A zero (or underflowing) scale becomes 1.
#pragma once

#include <cstdint>

#include "fp4forge/base/dtype.h"

namespace fp4forge {

inline constexpr int kInt4SymmetricZeroPoint = 8;

struct Int4GroupParams {
  int group_size = 128;         // 32, 64 or 128
  bool asymmetric = true;
  DType scale_dtype = DType::kF16;  // kF16 or kBF16
};

// Scale value after rounding to the storage dtype, and its bits.
float DecodeScale16(uint16_t bits, DType scale_dtype);
uint16_t EncodeScale16(float value, DType scale_dtype);

// Scale and zero point of one group from its min and max (lo <= 0 <= hi: the range includes 0).
struct Int4GroupScale {
  uint16_t scale_bits;
  float scale;  // DecodeScale16(scale_bits)
  int32_t zero_point;
};
Int4GroupScale ComputeInt4GroupScale(float lo, float hi, const Int4GroupParams& params);

// The code of one value: clamp(round_half_even(x / scale) + zero_point, 0, 15).
uint8_t EncodeInt4Value(float x, const Int4GroupScale& s);

// codes: [cols/2] packed nibbles (element 2k low); scales: [cols/group] f16/bf16 bits;
// zero_points: [cols/group] one per byte (asymmetric only; may be null when symmetric).
void QuantizeInt4RowRef(const float* x, int64_t cols, const Int4GroupParams& params, uint8_t* codes,
                        uint16_t* scales, uint8_t* zero_points);
void DequantizeInt4RowRef(const uint8_t* codes, const uint16_t* scales, const uint8_t* zero_points,
                          int64_t cols, const Int4GroupParams& params, float* x);

}  // namespace fp4forge
