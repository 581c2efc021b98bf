// NVFP4: E2M1 codes in blocks of 16 along a row, one E4M3 scale per block, one float32 scale S per
// tensor; x ~= e2m1(code) * e4m3(scale) * S. docs: FORMATS.md §3.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "fp4forge/base/dtype.h"

namespace fp4forge {

inline constexpr int kNvfp4BlockSize = 16;
// The kMse rule's window of E4M3 codes around the amax code (ANCHORS.md §1: matches exhaustive).
inline constexpr int kNvfp4MseCodesBelow = 2;
inline constexpr int kNvfp4MseCodesAbove = 6;

// How the per-block E4M3 scale is chosen. Every rule writes standard NVFP4 bytes.
enum class Nvfp4ScaleRule {
  kAmax,           // ModelOpt's dynamic path (FORMATS.md §3.2): block amax mapped to 6; bit-identical
  kMse,            // least squared error among the 9 E4M3 codes from 2 below to 6 above the amax code
  kMseExhaustive,  // least squared error among all 126 positive E4M3 codes
  kFourOverSix,    // S = amax/(6·256); per block the better of mapping its amax to 6 or to 4
  kSearch,         // kMse's blocks, at the S of Nvfp4SearchScales with the least error (Nvfp4PickSearchScale)
};

std::string_view Nvfp4ScaleRuleName(Nvfp4ScaleRule rule);  // "amax", "mse", "mse-exhaustive", "4over6", "search"
Nvfp4ScaleRule ParseNvfp4ScaleRule(std::string_view name);  // throws Error(kInvalidArgument)

// The per-tensor scale S (ModelOpt weight_scale_2) for a tensor, or fused group, of this amax:
// amax/2688 in float32, or amax/1536 for kFourOverSix (its largest block scale is then 384 <= 448).
// An all-zero tensor (amax 0) gets S = 1; its blocks all decode to zero whatever S is. For kSearch
// this is only its first candidate: the search picks S (below).
float Nvfp4TensorScale(float global_amax, Nvfp4ScaleRule rule);

// The search rule: S, shared by a tensor or fused group, chosen with the block scales. The block
// scales a tensor can have are the E4M3 values times S, so S slides that lattice against the
// blocks' amaxes, and amax/2688 is one valid choice among many.
// Candidates: S_i = fl(S_16 · i/16) for i = 16 (S_16 = amax/2688, the mse rule's S, tried first),
// then 14, 15, 17, 18, ..., 48 (S from 0.875 to 3 times amax/2688). Amax 0: {1}.
std::vector<float> Nvfp4SearchScales(float group_amax);
// The sample measured: the rows r of every member with r % stride == 0, where stride =
// ceil(group blocks / kNvfp4SearchSampleBlocks); a group of at most that many blocks is measured whole.
inline constexpr int64_t kNvfp4SearchSampleBlocks = 16384;
int64_t Nvfp4SearchRowStride(int64_t group_blocks);
// One row's error at S: each block's least Nvfp4BlockSquaredError among kMse's candidates (the
// codes kMse would pick from), summed in double in block order.
double Nvfp4RowSearchError(const float* x, int64_t cols, float tensor_scale);
// The index of the S picked from errors[i] = the sampled rows' Nvfp4RowSearchError at S_i, summed in
// double member by member and row by row: the least error, the earlier candidate on a tie (so never
// worse than the mse rule on the sample, which is the whole group when it is small).
size_t Nvfp4PickSearchScale(std::span<const double> errors);

// Whose arithmetic a tensor follows, which decides the per-tensor scalar a QuantizedTensor holds
// and how a block's divisor is formed from it. The bytes differ in a few blocks (FORMATS.md §3.4).
enum class Nvfp4Producer {
  kModelOpt,           // scalar S = amax/2688 (weight_scale_2); divisor fl(e4m3(scale) · S)
  kCompressedTensors,  // scalar gs = 2688/amax (weight_global_scale); divisor fl(e4m3(scale) / gs);
                       // llm-compressor's amax rule only
};

// The float32 every element of a block with this scale code is divided by (and multiplied by when
// dequantizing): fl(e4m3 · S) for ModelOpt, fl(e4m3 / gs) for compressed-tensors.
float Nvfp4Divisor(uint8_t scale_code, float tensor_scalar, Nvfp4Producer producer);

// llm-compressor's global scale for a tensor (or fused group) of this amax, in the weight's own
// dtype as PyTorch computes it (generate_gparam): amax clamped to the dtype's smallest normal,
// gs = dt(dt(1 / amax) · 2688) (PyTorch's scalar / tensor is a reciprocal and a product), then
// float32; a non-finite result becomes 1.
float Nvfp4CtGlobalScale(float global_amax, DType dtype);

// llm-compressor's block scale code (calculate_qparams): e4m3(min(fl(gs · dt(amax / 6)), 448));
// a code of 0 (zero block, or a scale below E4M3's range) becomes 0.125 (0x20).
uint8_t Nvfp4CtScaleCode(float block_amax, float global_scale, DType dtype);

// Block scale code of ModelOpt's dynamic rule for a block of this amax, mapping it to `target`
// (6, or 4 for Four Over Six): s = amax / fl(target·S) in float32; a zero block gets 1.0 (0x38);
// clamp to [2^-9, 448]; round to E4M3, ties to even.
uint8_t Nvfp4AmaxScaleCode(float block_amax, float tensor_scale, float target = 6.0f);

// The up to 127 scale codes a rule tries for one block, the incumbent first. A later candidate
// replaces the incumbent only with a strictly smaller squared error, so search rules are never
// worse than the amax code on any block.
struct Nvfp4Candidates {
  std::array<uint8_t, 127> codes;
  int count;
};
Nvfp4Candidates Nvfp4ScaleCandidates(float block_amax, float tensor_scale, Nvfp4ScaleRule rule);

// The search rules' measure of a block scale code: the squared error of 16 values on its grid,
// summed in float32 in element order in units of the grid step and scaled once:
//   d = fl(e4m3(code) · S), r = fl(1 / d) (at most FLT_MAX), q_k = fl(|x_k| · r),
//   sse = sum_k (e2m1(q_k) - q_k)^2, result fl(sse · fl(d · d)).
// Multiplying by r where the encoder divides by d can round q_k to the other side of a tie only
// when |x_k| / d is within an ulp of it, where both choices err alike; it spares the search a
// division per element and candidate (docs/decisions/0006-division-free-scale-search.md).
float Nvfp4BlockSquaredError(const float* x, uint8_t scale_code, float tensor_scale);

// The scale code a rule picks for one block of 16 finite values.
uint8_t Nvfp4SelectScaleCode(const float* block, Nvfp4ScaleRule rule, float tensor_scale);

// Reference quantizers of one row: cols % 16 == 0, values finite.
// codes: [cols/2] bytes, element 2k in the low nibble; scales: [cols/16] E4M3 bytes.
// Elements are x / fl(e4m3(scale) · S) (a float32 division, as ModelOpt) rounded by EncodeE2M1.
void QuantizeNvfp4RowRef(const float* x, int64_t cols, Nvfp4ScaleRule rule, float tensor_scale,
                         uint8_t* codes, uint8_t* scales);
// llm-compressor's: scales by Nvfp4CtScaleCode of values of `dtype`; elements x / Nvfp4Divisor.
void QuantizeNvfp4RowCtRef(const float* x, int64_t cols, DType dtype, float global_scale,
                           uint8_t* codes, uint8_t* scales);

// x[k] = e2m1(code_k) · Nvfp4Divisor(scale), the product every consumer computes.
void DequantizeNvfp4RowRef(const uint8_t* codes, const uint8_t* scales, int64_t cols,
                           float tensor_scalar, Nvfp4Producer producer, float* x);

}  // namespace fp4forge
