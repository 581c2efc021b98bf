#include "fp4forge/quant/quantize.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "fp4forge/base/error.h"
#include "fp4forge/cpu/quantize.h"

namespace fp4forge {

namespace {

// dst [cols, rows] = transpose of src [rows, cols], elements of `size` bytes; in tiles that stay in
// the L1 cache on both sides.
void TransposeBytes(const uint8_t* src, int64_t rows, int64_t cols, size_t size, uint8_t* dst) {
  constexpr int64_t kTile = 32;
  for (int64_t r0 = 0; r0 < rows; r0 += kTile) {
    for (int64_t c0 = 0; c0 < cols; c0 += kTile) {
      for (int64_t r = r0; r < std::min(rows, r0 + kTile); ++r) {
        for (int64_t c = c0; c < std::min(cols, c0 + kTile); ++c) {
          std::memcpy(dst + (c * rows + r) * size, src + (r * cols + c) * size, size);
        }
      }
    }
  }
}

// The first non-finite value of x, for the error message (only called when one exists).
void FailOnNonFinite(const ConstMatrixView& x, const std::string& name) {
  std::vector<float> row(x.cols);
  for (int64_t r = 0; r < x.rows; ++r) {
    LoadRowAsFloat(x, r, row.data());
    for (int64_t c = 0; c < x.cols; ++c) {
      if (!std::isfinite(row[c])) {
        Fail(ErrorCode::kInvalidData, "[Quantize] tensor '{}' has {} at row {}, column {}; expected finite values",
             name, row[c], r, c);
      }
    }
  }
}

}  // namespace

QuantizedTensor Quantize(const QuantSpec& spec, const ConstMatrixView& x, const QuantizeOptions& options) {
  QuantizedTensor q;
  Quantize(spec, x, options, q);
  return q;
}

void Quantize(const QuantSpec& spec, const ConstMatrixView& x, const QuantizeOptions& options, QuantizedTensor& out) {
  const FormatTraits traits = Traits(spec);
  const std::string& name = options.tensor_name;
  if (x.rows < 1 || x.cols < 1 || x.data == nullptr) {
    Fail(ErrorCode::kInvalidArgument, "[Quantize] tensor '{}' has shape [{}, {}]; expected a non-empty matrix", name,
         x.rows, x.cols);
  }
  if (const auto* int4 = std::get_if<Int4Spec>(&spec)) {
    const int g = int4->params.group_size;
    if (g != 32 && g != 64 && g != 128) {
      Fail(ErrorCode::kInvalidArgument, "[Quantize] INT4 group size {}; expected 32, 64 or 128", g);
    }
    if (int4->params.scale_dtype == DType::kF32) {
      Fail(ErrorCode::kInvalidArgument, "[Quantize] INT4 scale dtype f32; expected f16 or bf16");
    }
  }
  if (const auto* nvfp4 = std::get_if<Nvfp4Spec>(&spec);
      nvfp4 && nvfp4->producer == Nvfp4Producer::kCompressedTensors && nvfp4->rule != Nvfp4ScaleRule::kAmax) {
    Fail(ErrorCode::kInvalidArgument, "[Quantize] compressed-tensors' arithmetic exists for the amax rule only, not '{}'",
         Nvfp4ScaleRuleName(nvfp4->rule));
  }
  if (x.cols % traits.block_size != 0) {
    Fail(ErrorCode::kInvalidArgument,
         "[Quantize] tensor '{}' has rows of {} elements; {} {} needs a multiple of {} (skip or pad it)", name, x.cols,
         traits.format, traits.rule, traits.block_size);
  }

  const cpu::AmaxResult amax =
      options.tensor_amax ? cpu::AmaxResult{.amax = *options.tensor_amax} : cpu::TensorAmax(x, options.threads);
  if (!amax.all_finite) FailOnNonFinite(x, name);
  if (options.global_amax) {
    const float g = *options.global_amax;
    if (!std::isfinite(g) || g < amax.amax) {
      Fail(ErrorCode::kInvalidArgument, "[Quantize] tensor '{}': global amax {} must be finite and >= the tensor's amax {}",
           name, g, amax.amax);
    }
  }
  if (const auto* int4 = std::get_if<Int4Spec>(&spec); int4 && int4->params.scale_dtype == DType::kF16) {
    constexpr float kF16Max = 65504.0f;
    if (amax.amax / 7.5f > kF16Max) {  // asymmetric scales reach (2·amax)/15
      Fail(ErrorCode::kInvalidData, "[Quantize] tensor '{}' has amax {}: its INT4 scales overflow f16; use bf16 scales",
           name, amax.amax);
    }
  }
  const bool nvfp4 = std::holds_alternative<Nvfp4Spec>(spec);
  cpu::Quantize(spec, x, nvfp4 ? options.global_amax.value_or(amax.amax) : amax.amax, options.threads, out,
                options.nvfp4_tensor_scale);
}

void QuantizeBatchedExperts(const QuantSpec& spec, const ConstMatrixView& x, int64_t experts,
                            const QuantizeOptions& options, QuantizedTensor& out) {
  if (experts < 1 || x.rows % experts != 0 || x.rows < experts) {
    Fail(ErrorCode::kInvalidArgument, "[Quantize] tensor '{}': {} rows are not {} experts of equal size",
         options.tensor_name, x.rows, experts);
  }
  const int64_t k = x.rows / experts, n = x.cols;
  const int64_t block = Traits(spec).block_size;
  if (k % block != 0) {
    Fail(ErrorCode::kInvalidArgument, "[Quantize] tensor '{}' has experts of input size {}; {} needs a multiple of {}",
         options.tensor_name, k, Traits(spec).format, block);
  }
  QuantizeOptions expert_options = options;  // every expert is scaled by the whole tensor's amax
  if (!expert_options.tensor_amax) expert_options.tensor_amax = TensorAmax(x, options.threads, options.tensor_name);
  if (!expert_options.global_amax) expert_options.global_amax = expert_options.tensor_amax;
  const size_t element = DTypeBytes(x.dtype);
  std::vector<uint8_t> transposed(static_cast<size_t>(n * k) * element);
  const auto* nvfp4 = std::get_if<Nvfp4Spec>(&spec);
  if (nvfp4 && nvfp4->rule == Nvfp4ScaleRule::kSearch && !expert_options.nvfp4_tensor_scale) {
    // One S for all experts, searched over the rows they are quantized as ([N, K] each, along K):
    // the sampled rows only, gathered from the columns of x, so that no second copy is made.
    const int64_t stride = Nvfp4SearchRowStride(experts * n * (k / block)), sampled = (n + stride - 1) / stride;
    std::vector<uint8_t> rows(static_cast<size_t>(experts * sampled * k) * element);
    std::vector<ConstMatrixView> members;
    for (int64_t e = 0; e < experts; ++e) {
      uint8_t* out_rows = &rows[static_cast<size_t>(e * sampled * k) * element];
      for (int64_t j = 0; j < sampled; ++j) {
        for (int64_t i = 0; i < k; ++i) {
          std::memcpy(out_rows + (j * k + i) * element, x.RowBytes(e * k + i) + j * stride * element, element);
        }
      }
      members.push_back({.data = out_rows, .dtype = x.dtype, .rows = sampled, .cols = k});
    }
    expert_options.nvfp4_tensor_scale = cpu::SearchNvfp4TensorScale(members, *expert_options.global_amax, 1, options.threads);
  }
  QuantizedTensor q;
  ResizeQuantized(out, spec, experts * n, k);
  for (int64_t e = 0; e < experts; ++e) {
    TransposeBytes(x.RowBytes(e * k), k, n, element, transposed.data());
    Quantize(spec, {.data = transposed.data(), .dtype = x.dtype, .rows = n, .cols = k}, expert_options, q);
    TransposeBytes(q.codes.data(), n, k / 2, 1, &out.codes[static_cast<size_t>(e * n * k / 2)]);
    TransposeBytes(q.block_scales.data(), n, k / block, 1, &out.block_scales[static_cast<size_t>(e * n * k / block)]);
  }
  out.tensor_scales = q.tensor_scales;
}

std::vector<float> Dequantize(const QuantizedTensor& q, int threads) { return cpu::Dequantize(q, threads); }

float SearchNvfp4TensorScale(std::span<const ConstMatrixView> members, float group_amax, int threads,
                             const std::string& group_name) {
  for (const ConstMatrixView& m : members) {
    if (m.rows < 1 || m.cols < 1 || m.data == nullptr || m.cols % kNvfp4BlockSize != 0) {
      Fail(ErrorCode::kInvalidArgument, "[SearchNvfp4TensorScale] a member of '{}' has shape [{}, {}]; expected rows of "
           "a multiple of {} elements", group_name, m.rows, m.cols, kNvfp4BlockSize);
    }
    if (!cpu::TensorAmax(m, threads).all_finite) FailOnNonFinite(m, group_name);
  }
  if (!std::isfinite(group_amax) || group_amax < 0.0f) {
    Fail(ErrorCode::kInvalidArgument, "[SearchNvfp4TensorScale] '{}': group amax {} must be finite", group_name, group_amax);
  }
  return cpu::SearchNvfp4TensorScale(members, group_amax, cpu::Nvfp4SearchRowStride(members), threads);
}

float TensorAmax(const ConstMatrixView& x, int threads, const std::string& tensor_name) {
  const cpu::AmaxResult amax = cpu::TensorAmax(x, threads);
  if (!amax.all_finite) FailOnNonFinite(x, tensor_name);
  return amax.amax;
}

}  // namespace fp4forge
