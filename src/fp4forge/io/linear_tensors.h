// The tensors that make up one Linear layer's weight, in every dialect fp4forge reads (FORMATS.md
// §4a ModelOpt, §4b compressed-tensors, FP8): what a consumer needs to run the layer as stored,
// checked for shape and dtype, with the dialect's scale conventions resolved here and nowhere else.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "fp4forge/io/checkpoint.h"

namespace fp4forge {

enum class LinearScheme {
  kDense,  // F32/BF16/F16 `weight`
  kNvfp4,  // E2M1 codes + E4M3 block scales of 16 + a per-tensor scalar
  kMxfp4,  // E2M1 codes + UE8M0 block scales of 32 (compressed-tensors mxfp4-pack-quantized)
  kFp8,    // E4M3 `weight` + F32 `weight_scale`, per tensor or per output channel
};

struct LinearTensors {
  LinearScheme scheme = LinearScheme::kDense;
  int64_t rows = 0, cols = 0;  // logical [out, in]
  const SafetensorsTensor* weight = nullptr;        // values, or packed codes [rows, cols/2], or E4M3 codes
  const SafetensorsTensor* block_scales = nullptr;  // NVFP4 [rows, cols/16] E4M3; MXFP4 [rows, cols/32] U8
  const SafetensorsTensor* row_scales = nullptr;    // FP8 per channel: F32 [rows] or [rows, 1]
  // NVFP4: ModelOpt weight_scale_2 (S, the dequantization multiplier) or, when
  // `reciprocal_tensor_scalar`, compressed-tensors weight_global_scale (1/S). FP8 per tensor: its scale.
  float tensor_scalar = 1.0f;
  bool reciprocal_tensor_scalar = false;
  // W4A4 NVFP4: the activations' global scale gs = 2688 / amax_x (FORMATS.md §3.6 step 1), from
  // ModelOpt input_scale (1/gs) or compressed-tensors input_global_scale (gs). None: weight-only.
  std::optional<float> input_global_scale;
  const SafetensorsTensor* bias = nullptr;  // F32/BF16/F16 [rows]
};

// Finds the Linear `module` (e.g. "model.layers.0.self_attn.q_proj") in the checkpoint. Throws
// Error(kInvalidData) naming the tensor and what was expected when a tensor of it has the wrong
// dtype or shape or a companion is missing, Error(kUnsupported) for a weight dtype no scheme
// reads, and Error(kInvalidData) when there is no weight at all.
LinearTensors FindLinear(const Checkpoint& checkpoint, const std::string& module);

// The F32/BF16/F16 vector `name` (a norm weight or bias) of `length` elements as float32; throws
// Error naming it when it is absent, of another dtype, or of another shape.
std::vector<float> ReadVector(const Checkpoint& checkpoint, const std::string& name, int64_t length);

}  // namespace fp4forge
