// The validated entry points for quantizing one tensor. Everything a caller can get wrong is
// checked here, with an error naming the tensor; the kernels below assume valid input.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <vector>

#include "fp4forge/base/dtype.h"
#include "fp4forge/format/quantized_tensor.h"

namespace fp4forge {

struct QuantizeOptions {
  int threads = 0;                   // 0 = all hardware threads; the result does not depend on it
  std::optional<float> global_amax;  // NVFP4: a fused group's joint amax (>= this tensor's amax)
  std::string tensor_name = "tensor";  // used in error messages
  // The tensor's own amax when the caller already measured it with TensorAmax (which validated the
  // values): saves a pass over the data.
  std::optional<float> tensor_amax;
  // NVFP4 search rule: S as searched for the tensor's fused group (SearchNvfp4TensorScale below);
  // absent, Quantize searches the tensor alone.
  std::optional<float> nvfp4_tensor_scale;
};

// Throws Error when: rows or cols < 1; cols is not a multiple of the format's block size
// (kInvalidArgument: the caller decides to skip or pad); an INT4 group size is not 32, 64 or 128;
// a value is NaN or ±Inf (kInvalidData, naming row and column); the global amax is not finite or
// below the tensor's amax; FP16 INT4 scales would overflow.
QuantizedTensor Quantize(const QuantSpec& spec, const ConstMatrixView& x, const QuantizeOptions& options = {});
// The same into `out`, reusing its buffers: no new pages per tensor when quantizing many.
void Quantize(const QuantSpec& spec, const ConstMatrixView& x, const QuantizeOptions& options, QuantizedTensor& out);

// Batched ("BMM-style") expert weights, x = E experts of [K, N] stacked as [E·K, N] (gpt-oss and
// Llama 4 store [E, in, out]), as ModelOpt exports them (FORMATS.md §4a): each expert transposed to
// [N, K] and quantized along K, one global scale for all experts, and codes and block scales
// transposed back, so out.codes holds [E, K/2, N] and out.block_scales [E, K/16, N] (out.rows and
// out.cols stay E·N and K). Block formats only. Throws as Quantize, and when x.rows % experts != 0.
void QuantizeBatchedExperts(const QuantSpec& spec, const ConstMatrixView& x, int64_t experts,
                            const QuantizeOptions& options, QuantizedTensor& out);

std::vector<float> Dequantize(const QuantizedTensor& q, int threads = 0);

// The NVFP4 search rule's S for the members of a fused group (or one tensor), whose joint amax is
// `group_amax` (format/quantized_tensor.h: SearchNvfp4TensorScaleRef). Members must be valid input
// of Quantize (finite, rows of a multiple of 16); throws Error(kInvalidArgument) otherwise.
float SearchNvfp4TensorScale(std::span<const ConstMatrixView> members, float group_amax, int threads,
                             const std::string& group_name);

// max |x| of a tensor (e.g. to form a fused group's amax before quantizing its members); throws
// Error(kInvalidData) naming the tensor, row and column of a NaN or ±Inf.
float TensorAmax(const ConstMatrixView& x, int threads, const std::string& tensor_name);

}  // namespace fp4forge
