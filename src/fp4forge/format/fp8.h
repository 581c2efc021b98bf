// FP8 E4M3 with a float32 scale per tensor or per row (output channel): x ~= e4m3(code) · scale,
// scale = amax/448 (a zero amax gives 1). Codes are x/scale clamped to ±448, then rounded by
// EncodeE4M3 (ties to even). docs: FORMATS.md §2.1.
#pragma once

#include <cstdint>

namespace fp4forge {

float Fp8Scale(float amax);

// codes: [cols] E4M3 bytes.
void QuantizeFp8RowRef(const float* x, int64_t cols, float scale, uint8_t* codes);
void DequantizeFp8RowRef(const uint8_t* codes, int64_t cols, float scale, float* x);

}  // namespace fp4forge
