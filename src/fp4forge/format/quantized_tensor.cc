#include "fp4forge/format/quantized_tensor.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include <fmt/format.h>

#include "fp4forge/codec/half.h"
#include "fp4forge/format/fp8.h"

namespace fp4forge {

namespace {
template <typename... Fns>
struct Overloaded : Fns... {
  using Fns::operator()...;
};
template <typename... Fns>
Overloaded(Fns...) -> Overloaded<Fns...>;  // C++20 deduces it; clang 14 (the fuzz build) needs it spelled

float RowAmax(const float* x, int64_t cols) {
  float amax = 0.0f;
  for (int64_t k = 0; k < cols; ++k) amax = std::max(amax, std::fabs(x[k]));
  return amax;
}
}  // namespace

FormatTraits Traits(const QuantSpec& spec) {
  return std::visit(
      Overloaded{
          [](const Nvfp4Spec& s) {
            const std::string rule = s.producer == Nvfp4Producer::kModelOpt ? std::string(Nvfp4ScaleRuleName(s.rule))
                                                                            : "compressed-tensors";
            return FormatTraits{"nvfp4", rule, kNvfp4BlockSize, 4.0 + 8.0 / kNvfp4BlockSize};
          },
          [](const Mxfp4Spec& s) {
            return FormatTraits{"mxfp4", std::string(Mxfp4ScaleRuleName(s.rule)), kMxfp4BlockSize, 4.0 + 8.0 / kMxfp4BlockSize};
          },
          [](const Int4Spec& s) {
            const Int4GroupParams& p = s.params;
            const double bits = 4.0 + (16.0 + (p.asymmetric ? 4.0 : 0.0)) / p.group_size;
            return FormatTraits{"int4", fmt::format("{}-g{}-{}", p.asymmetric ? "asym" : "sym", p.group_size, DTypeName(p.scale_dtype)),
                                p.group_size, bits};
          },
          [](const Fp8Spec& s) {
            return FormatTraits{"fp8", s.per_channel ? "per-channel" : "per-tensor", 1, 8.0};
          },
      },
      spec);
}

void ResizeQuantized(QuantizedTensor& q, const QuantSpec& spec, int64_t rows, int64_t cols) {
  q.spec = spec;
  q.rows = rows;
  q.cols = cols;
  const size_t n = static_cast<size_t>(rows * cols);
  size_t codes = n / 2, block_scales = 0, group_scales = 0, zero_points = 0, tensor_scales = 0;
  std::visit(Overloaded{
                 [&](const Nvfp4Spec&) {
                   block_scales = n / kNvfp4BlockSize;
                   tensor_scales = 1;
                 },
                 [&](const Mxfp4Spec&) { block_scales = n / kMxfp4BlockSize; },
                 [&](const Int4Spec& s) {
                   group_scales = n / s.params.group_size;
                   if (s.params.asymmetric) zero_points = n / s.params.group_size;
                 },
                 [&](const Fp8Spec& s) {
                   codes = n;
                   tensor_scales = s.per_channel ? rows : 1;
                 },
             },
             spec);
  q.codes.resize(codes);
  q.block_scales.resize(block_scales);
  q.group_scales.resize(group_scales);
  q.zero_points.resize(zero_points);
  q.tensor_scales.resize(tensor_scales);
}

void SetTensorScale(QuantizedTensor& q, float amax, DType input) {
  if (const auto* nvfp4 = std::get_if<Nvfp4Spec>(&q.spec)) {
    q.tensor_scales[0] = nvfp4->producer == Nvfp4Producer::kModelOpt ? Nvfp4TensorScale(amax, nvfp4->rule)
                                                                      : Nvfp4CtGlobalScale(amax, input);
  }
  if (const auto* fp8 = std::get_if<Fp8Spec>(&q.spec); fp8 && !fp8->per_channel) q.tensor_scales[0] = Fp8Scale(amax);
}

uint8_t BlockScaleCode(const QuantizedTensor& q, DType input, float block_amax) {
  if (const auto* mxfp4 = std::get_if<Mxfp4Spec>(&q.spec)) return Mxfp4ScaleCode(block_amax, mxfp4->rule);
  return std::get<Nvfp4Spec>(q.spec).producer == Nvfp4Producer::kModelOpt
             ? Nvfp4AmaxScaleCode(block_amax, q.tensor_scales[0])
             : Nvfp4CtScaleCode(block_amax, q.tensor_scales[0], input);
}

std::vector<uint8_t> BlockScaleCodeTable(const QuantizedTensor& q, DType input) {
  constexpr size_t kPatterns = 0x8000;  // Inf and NaN patterns too: no lookup can leave the table
  const bool block_format = std::holds_alternative<Nvfp4Spec>(q.spec) || std::holds_alternative<Mxfp4Spec>(q.spec);
  if (!block_format || input == DType::kF32 || q.block_scales.size() <= kPatterns) return {};
  std::vector<uint8_t> table(kPatterns);
  for (uint16_t bits = 0; bits < kPatterns; ++bits) {
    table[bits] = BlockScaleCode(q, input, input == DType::kBF16 ? DecodeBF16(bits) : DecodeF16(bits));
  }
  return table;
}

void LoadRowAsFloat(const ConstMatrixView& x, int64_t row, float* out) {
  const uint8_t* bytes = x.RowBytes(row);
  switch (x.dtype) {
    case DType::kF32:
      std::memcpy(out, bytes, x.cols * sizeof(float));
      break;
    case DType::kBF16:
    case DType::kF16:
      for (int64_t k = 0; k < x.cols; ++k) {
        uint16_t bits;
        std::memcpy(&bits, bytes + 2 * k, 2);
        out[k] = x.dtype == DType::kBF16 ? DecodeBF16(bits) : DecodeF16(bits);
      }
      break;
  }
}

float SearchNvfp4TensorScaleRef(std::span<const ConstMatrixView> members, float group_amax) {
  const std::vector<float> scales = Nvfp4SearchScales(group_amax);
  int64_t group_blocks = 0;
  for (const ConstMatrixView& m : members) group_blocks += m.rows * (m.cols / kNvfp4BlockSize);
  const int64_t stride = Nvfp4SearchRowStride(group_blocks);
  std::vector<double> errors(scales.size(), 0.0);
  for (const ConstMatrixView& m : members) {
    std::vector<float> row(static_cast<size_t>(m.cols));
    for (int64_t r = 0; r < m.rows; r += stride) {
      LoadRowAsFloat(m, r, row.data());
      for (size_t i = 0; i < scales.size(); ++i) errors[i] += Nvfp4RowSearchError(row.data(), m.cols, scales[i]);
    }
  }
  return scales[Nvfp4PickSearchScale(errors)];
}

QuantizedTensor QuantizeRef(const QuantSpec& spec, const ConstMatrixView& x, std::optional<float> global_amax,
                            std::optional<float> tensor_scale) {
  QuantizedTensor q;
  ResizeQuantized(q, spec, x.rows, x.cols);
  std::vector<float> row(x.cols);
  const int64_t half_cols = x.cols / 2;

  float tensor_amax = 0.0f;
  for (int64_t r = 0; r < x.rows; ++r) {
    LoadRowAsFloat(x, r, row.data());
    tensor_amax = std::max(tensor_amax, RowAmax(row.data(), x.cols));
  }

  SetTensorScale(q, global_amax.value_or(tensor_amax), x.dtype);
  if (const auto* nvfp4 = std::get_if<Nvfp4Spec>(&spec); nvfp4 && nvfp4->rule == Nvfp4ScaleRule::kSearch) {
    const ConstMatrixView self[] = {x};
    q.tensor_scales[0] = tensor_scale ? *tensor_scale : SearchNvfp4TensorScaleRef(self, global_amax.value_or(tensor_amax));
  }
  for (int64_t r = 0; r < x.rows; ++r) {
    LoadRowAsFloat(x, r, row.data());
    std::visit(
        Overloaded{
            [&](const Nvfp4Spec& s) {
              uint8_t* codes = &q.codes[r * half_cols];
              uint8_t* scales = &q.block_scales[r * x.cols / kNvfp4BlockSize];
              if (s.producer == Nvfp4Producer::kModelOpt) {
                QuantizeNvfp4RowRef(row.data(), x.cols, s.rule, q.tensor_scales[0], codes, scales);
              } else {
                QuantizeNvfp4RowCtRef(row.data(), x.cols, x.dtype, q.tensor_scales[0], codes, scales);
              }
            },
            [&](const Mxfp4Spec& s) {
              QuantizeMxfp4RowRef(row.data(), x.cols, s.rule, &q.codes[r * half_cols],
                                  &q.block_scales[r * x.cols / kMxfp4BlockSize]);
            },
            [&](const Int4Spec& s) {
              const int64_t groups = x.cols / s.params.group_size;
              QuantizeInt4RowRef(row.data(), x.cols, s.params, &q.codes[r * half_cols], &q.group_scales[r * groups],
                                 s.params.asymmetric ? &q.zero_points[r * groups] : nullptr);
            },
            [&](const Fp8Spec& s) {
              if (s.per_channel) q.tensor_scales[r] = Fp8Scale(RowAmax(row.data(), x.cols));
              QuantizeFp8RowRef(row.data(), x.cols, q.tensor_scales[s.per_channel ? r : 0], &q.codes[r * x.cols]);
            },
        },
        spec);
  }
  return q;
}

std::vector<float> DequantizeRef(const QuantizedTensor& q) {
  std::vector<float> out(static_cast<size_t>(q.rows * q.cols));
  DequantizeRowsRef(q, 0, q.rows, out.data());
  return out;
}

void DequantizeRowsRef(const QuantizedTensor& q, int64_t row_begin, int64_t row_end, float* out) {
  const int64_t half_cols = q.cols / 2;
  for (int64_t r = row_begin; r < row_end; ++r) {
    float* row = &out[r * q.cols];
    std::visit(
        Overloaded{
            [&](const Nvfp4Spec& s) {
              DequantizeNvfp4RowRef(&q.codes[r * half_cols], &q.block_scales[r * q.cols / kNvfp4BlockSize], q.cols,
                                    q.tensor_scales[0], s.producer, row);
            },
            [&](const Mxfp4Spec&) {
              DequantizeMxfp4RowRef(&q.codes[r * half_cols], &q.block_scales[r * q.cols / kMxfp4BlockSize], q.cols, row);
            },
            [&](const Int4Spec& s) {
              const int64_t groups = q.cols / s.params.group_size;
              DequantizeInt4RowRef(&q.codes[r * half_cols], &q.group_scales[r * groups],
                                   s.params.asymmetric ? &q.zero_points[r * groups] : nullptr, q.cols, s.params, row);
            },
            [&](const Fp8Spec& s) {
              DequantizeFp8RowRef(&q.codes[r * q.cols], q.cols, q.tensor_scales[s.per_channel ? r : 0], row);
            },
        },
        q.spec);
  }
}

}  // namespace fp4forge
