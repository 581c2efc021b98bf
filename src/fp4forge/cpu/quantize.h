// SIMD (Highway, runtime dispatch) quantizers over whole tensors, split by rows over threads.
// Every function here equals the scalar reference of format/ bit for bit, on every CPU target and
// for every thread count. Inputs must already be validated (quant/quantize.h does that).
#pragma once

#include <optional>
#include <span>
#include <vector>

#include "fp4forge/base/dtype.h"
#include "fp4forge/format/quantized_tensor.h"

namespace fp4forge::cpu {

struct AmaxResult {
  float amax = 0.0f;         // max |x| over the finite values
  bool all_finite = true;    // false when any value is NaN or ±Inf
};
AmaxResult TensorAmax(const ConstMatrixView& x, int threads);

// Same contract as QuantizeRef. `scale_amax` is the amax the per-tensor scale comes from: the
// tensor's own (TensorAmax), or for NVFP4 its fused group's; `tensor_scale` the search rule's S
// when the caller searched it for the group (SearchNvfp4TensorScale), else the tensor is searched
// alone. `threads` 0 = all hardware threads.
QuantizedTensor Quantize(const QuantSpec& spec, const ConstMatrixView& x, float scale_amax, int threads,
                         std::optional<float> tensor_scale = std::nullopt);
// The same into `out`, reusing its buffers (ResizeQuantized).
void Quantize(const QuantSpec& spec, const ConstMatrixView& x, float scale_amax, int threads, QuantizedTensor& out,
              std::optional<float> tensor_scale = std::nullopt);

// Same contract as SearchNvfp4TensorScaleRef: the search rule's S for a tensor or fused group,
// measured on the members' rows r % row_stride == 0 (the reference's stride is
// Nvfp4SearchRowStride(members); a caller that hands over only those rows passes 1).
int64_t Nvfp4SearchRowStride(std::span<const ConstMatrixView> members);
float SearchNvfp4TensorScale(std::span<const ConstMatrixView> members, float group_amax, int64_t row_stride, int threads);

// Same contract as DequantizeRef (the scalar row decoders, run over threads).
std::vector<float> Dequantize(const QuantizedTensor& q, int threads);

}  // namespace fp4forge::cpu
