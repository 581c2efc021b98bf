// MXFP4 (OCP MX): E2M1 codes in blocks of 32 along a row, one UE8M0 power-of-two scale per block,
// no tensor scale. docs: FORMATS.md §2.3, §4.b-c, TV-8.
#pragma once

#include <cstdint>
#include <string_view>

namespace fp4forge {

inline constexpr int kMxfp4BlockSize = 32;

enum class Mxfp4ScaleRule {
  kOcp,      // OCP MX v1.0 / microxcaling / ggml: 2^(floor(log2 amax) - 2); the largest elements
             // may exceed 6 and saturate
  kRoundUp,  // ModelOpt, TensorRT-LLM, triton_kernels ROUND_UP: 2^ceil(log2(amax/6)); never clips
  kCompressedTensors,  // compressed-tensors (generate_mx_scales): amax rounded to a power of two,
                       // up from 1.75 · 2^e, then · 2^-2
};

std::string_view Mxfp4ScaleRuleName(Mxfp4ScaleRule rule);  // "ocp", "round-up", "compressed-tensors"
Mxfp4ScaleRule ParseMxfp4ScaleRule(std::string_view name);

// UE8M0 scale byte for a block of this (finite, non-negative) amax. The exponent is clamped to
// [-127, 127]; a zero block gets 2^-127 (byte 0). kRoundUp rounds amax/6 (a float32 division) up
// to a power of two on its bits, as triton_kernels does.
uint8_t Mxfp4ScaleCode(float block_amax, Mxfp4ScaleRule rule);

// codes: [cols/2] packed E2M1 (element 2k low nibble); scales: [cols/32] UE8M0. cols % 32 == 0.
// Elements are x / 2^k (exact) rounded by EncodeE2M1 (ties to even, saturating).
void QuantizeMxfp4RowRef(const float* x, int64_t cols, Mxfp4ScaleRule rule, uint8_t* codes,
                         uint8_t* scales);
void DequantizeMxfp4RowRef(const uint8_t* codes, const uint8_t* scales, int64_t cols, float* x);

}  // namespace fp4forge
