#include "fp4forge/format/fp8.h"

#include <algorithm>

#include "fp4forge/codec/e4m3.h"

namespace fp4forge {

float Fp8Scale(float amax) { return amax == 0.0f ? 1.0f : amax / kE4M3Max; }

void QuantizeFp8RowRef(const float* x, int64_t cols, float scale, uint8_t* codes) {
  for (int64_t k = 0; k < cols; ++k) codes[k] = EncodeE4M3(std::clamp(x[k] / scale, -kE4M3Max, kE4M3Max));
}

void DequantizeFp8RowRef(const uint8_t* codes, int64_t cols, float scale, float* x) {
  for (int64_t k = 0; k < cols; ++k) x[k] = DecodeE4M3(codes[k]) * scale;
}

}  // namespace fp4forge
