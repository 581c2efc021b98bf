// SIMD (Highway, runtime dispatch) quantizers over whole tensors, split by rows over threads.
// Every function here equals the scalar reference of format/ bit for bit, on every CPU target and
// for every thread count. Inputs must already be validated (quant/quantize.h does that).
#pragma once

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
// tensor's own (TensorAmax), or for NVFP4 its fused group's. `threads` 0 = all hardware threads.
QuantizedTensor Quantize(const QuantSpec& spec, const ConstMatrixView& x, float scale_amax, int threads);
// The same into `out`, reusing its buffers (ResizeQuantized).
void Quantize(const QuantSpec& spec, const ConstMatrixView& x, float scale_amax, int threads, QuantizedTensor& out);

// Same contract as DequantizeRef (the scalar row decoders, run over threads).
std::vector<float> Dequantize(const QuantizedTensor& q, int threads);

}  // namespace fp4forge::cpu
