// A quantized matrix in any of the block formats, and the scalar reference over whole tensors.
// Formats are types: a QuantSpec holds one of the four *Spec structs, and FormatTraits answers
// what the rest of the code asks of a format (its name, block size, storage cost).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "fp4forge/base/dtype.h"
#include "fp4forge/format/int4_group.h"
#include "fp4forge/format/mxfp4.h"
#include "fp4forge/format/nvfp4.h"

namespace fp4forge {

struct Nvfp4Spec {
  Nvfp4ScaleRule rule = Nvfp4ScaleRule::kAmax;
  Nvfp4Producer producer = Nvfp4Producer::kModelOpt;  // kCompressedTensors only with kAmax
};
struct Mxfp4Spec {
  Mxfp4ScaleRule rule = Mxfp4ScaleRule::kOcp;
};
struct Int4Spec {
  Int4GroupParams params;
};
struct Fp8Spec {
  bool per_channel = false;
};
using QuantSpec = std::variant<Nvfp4Spec, Mxfp4Spec, Int4Spec, Fp8Spec>;

struct FormatTraits {
  std::string format;  // "nvfp4", "mxfp4", "int4", "fp8"
  std::string rule;    // e.g. "amax", "ocp", "asym-g128-f16", "per-tensor"
  int block_size;      // row length must be a multiple of this
  // Storage per weight, counting codes, block/group scales and zero points, not per-tensor scalars.
  double bits_per_weight;
};
FormatTraits Traits(const QuantSpec& spec);

struct QuantizedTensor {
  QuantSpec spec;
  int64_t rows = 0;
  int64_t cols = 0;
  std::vector<uint8_t> codes;          // 4-bit formats: [rows, cols/2], element 2k low; FP8: [rows, cols]
  std::vector<uint8_t> block_scales;   // NVFP4: E4M3 [rows, cols/16]; MXFP4: UE8M0 [rows, cols/32]
  std::vector<uint16_t> group_scales;  // INT4: f16/bf16 bits [rows, cols/group]
  std::vector<uint8_t> zero_points;    // INT4 asymmetric: [rows, cols/group], one per byte
  std::vector<float> tensor_scales;    // NVFP4: [1] = S (ModelOpt) or gs (compressed-tensors); FP8: [1] or [rows]
};

// Sizes q's buffers for `spec` and shape. They keep their capacity (contents unspecified until
// quantized into), so that quantizing tensor after tensor into one QuantizedTensor allocates no
// new pages.
void ResizeQuantized(QuantizedTensor& q, const QuantSpec& spec, int64_t rows, int64_t cols);

// Sets the per-tensor scalars: NVFP4 S or gs from `amax` (the tensor's, or its fused group's) and
// the input's dtype (compressed-tensors computes gs in it), FP8 per-tensor scale from the tensor's
// amax. Per-channel FP8 scales are set row by row.
void SetTensorScale(QuantizedTensor& q, float amax, DType input);

// The scale code of a block of an NVFP4 (amax rule's starting code for the search rules) or MXFP4
// tensor whose per-tensor scalars are set, from the block's amax alone.
uint8_t BlockScaleCode(const QuantizedTensor& q, DType input, float block_amax);

// For 16-bit inputs: BlockScaleCode of every magnitude bit pattern (0 to 0x7FFF) a block amax can have,
// indexed by the pattern, so that kernels look blocks up instead of dividing and rounding for each.
// Empty where it would not pay (float32 input, fewer blocks than patterns) or q has no block scales.
std::vector<uint8_t> BlockScaleCodeTable(const QuantizedTensor& q, DType input);

// Reads row `row` of a validated view as float32 (exact for f32, bf16 and f16).
void LoadRowAsFloat(const ConstMatrixView& x, int64_t row, float* out);

// The scalar reference over a whole tensor: the specification the SIMD paths are tested against.
// Expects validated input (finite values, cols a multiple of the block size). `global_amax` is the
// NVFP4 tensor/group amax (max|x| of the tensor when absent); FP8 scales come from the data. The
// NVFP4 search rule uses `tensor_scale` as S (searched for its fused group), else searches x alone.
QuantizedTensor QuantizeRef(const QuantSpec& spec, const ConstMatrixView& x,
                            std::optional<float> global_amax = std::nullopt,
                            std::optional<float> tensor_scale = std::nullopt);

// The search rule's S for a tensor or fused group (nvfp4.h: Nvfp4SearchScales): each candidate's
// error over the members' sampled rows (Nvfp4SearchRowStride of all their blocks), summed in double
// member by member and row by row, and the pick of Nvfp4PickSearchScale. `group_amax`: the members'
// joint amax.
float SearchNvfp4TensorScaleRef(std::span<const ConstMatrixView> members, float group_amax);
std::vector<float> DequantizeRef(const QuantizedTensor& q);
// Rows [row_begin, row_end) of q into out, which points at row 0 of a [rows, cols] float buffer.
void DequantizeRowsRef(const QuantizedTensor& q, int64_t row_begin, int64_t row_end, float* out);

}  // namespace fp4forge
