#include "fp4forge/format/mxfp4.h"

#include <algorithm>
#include <bit>
#include <cmath>

#include "fp4forge/base/error.h"
#include "fp4forge/codec/e2m1.h"
#include "fp4forge/codec/ue8m0.h"

namespace fp4forge {

namespace {
constexpr int kE2M1MaxExponent = 2;  // 6 = 1.5 · 2^2: OCP "emax" of E2M1

// Unbiased float32 exponent field, i.e. floor(log2 a) for normal a; subnormals and 0 give -127.
int Float32Exponent(float a) { return static_cast<int>((std::bit_cast<uint32_t>(a) >> 23) & 0xFF) - 127; }
}  // namespace

std::string_view Mxfp4ScaleRuleName(Mxfp4ScaleRule rule) {
  switch (rule) {
    case Mxfp4ScaleRule::kOcp: return "ocp";
    case Mxfp4ScaleRule::kRoundUp: return "round-up";
    case Mxfp4ScaleRule::kCompressedTensors: return "compressed-tensors";
  }
  return "?";
}

Mxfp4ScaleRule ParseMxfp4ScaleRule(std::string_view name) {
  for (Mxfp4ScaleRule rule : {Mxfp4ScaleRule::kOcp, Mxfp4ScaleRule::kRoundUp, Mxfp4ScaleRule::kCompressedTensors}) {
    if (name == Mxfp4ScaleRuleName(rule)) return rule;
  }
  Fail(ErrorCode::kInvalidArgument, "[MXFP4 scale rule] got '{}', expected ocp, round-up or compressed-tensors", name);
}

uint8_t Mxfp4ScaleCode(float block_amax, Mxfp4ScaleRule rule) {
  int k;
  if (rule == Mxfp4ScaleRule::kOcp) {
    k = Float32Exponent(block_amax) - kE2M1MaxExponent;
  } else if (rule == Mxfp4ScaleRule::kCompressedTensors) {
    // Adding half of the mantissa's top bit carries into the exponent from 1.75 · 2^e up (7.0 -> 8).
    k = Float32Exponent(std::bit_cast<float>(std::bit_cast<uint32_t>(block_amax) + 0x200000)) - kE2M1MaxExponent;
  } else {
    // Adding 0x7FFFFF to the bits carries into the exponent unless the mantissa is already zero:
    // the next power of two at or above amax/6. Example: 7/6 -> 2 (byte 128), 6/6 -> 1 (127).
    // (Values up to 2^-127, bits 0x00400000, are clamped to 2^-127 rather than rounded up.)
    const uint32_t bits = std::bit_cast<uint32_t>(block_amax / kE2M1Max);
    k = bits <= 0x00400000 ? -127 : static_cast<int>(((bits + 0x7FFFFF) >> 23) & 0xFF) - 127;
  }
  return EncodeUE8M0Exponent(std::clamp(k, -127, 127));
}

void QuantizeMxfp4RowRef(const float* x, int64_t cols, Mxfp4ScaleRule rule, uint8_t* codes,
                         uint8_t* scales) {
  for (int64_t b = 0; b < cols / kMxfp4BlockSize; ++b) {
    const float* block = x + b * kMxfp4BlockSize;
    float amax = 0.0f;
    for (int k = 0; k < kMxfp4BlockSize; ++k) amax = std::max(amax, std::fabs(block[k]));
    scales[b] = Mxfp4ScaleCode(amax, rule);
    const float d = DecodeUE8M0(scales[b]);
    for (int k = 0; k < kMxfp4BlockSize; k += 2) {
      codes[(b * kMxfp4BlockSize + k) / 2] = PackNibbles(EncodeE2M1(block[k] / d), EncodeE2M1(block[k + 1] / d));
    }
  }
}

void DequantizeMxfp4RowRef(const uint8_t* codes, const uint8_t* scales, int64_t cols, float* x) {
  for (int64_t k = 0; k < cols; k += 2) {
    const float d = DecodeUE8M0(scales[k / kMxfp4BlockSize]);
    x[k] = DecodeE2M1(LowNibble(codes[k / 2])) * d;
    x[k + 1] = DecodeE2M1(HighNibble(codes[k / 2])) * d;
  }
}

}  // namespace fp4forge
