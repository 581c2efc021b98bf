#include "fp4forge/format/nvfp4.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "fp4forge/base/error.h"
#include "fp4forge/codec/e2m1.h"
#include "fp4forge/codec/e4m3.h"
#include "fp4forge/codec/half.h"

namespace fp4forge {

namespace {
constexpr float kFourOverSixScaleMax = 256.0f;  // FORMATS.md §3.2 "Variants": E4M3_MAX_46
constexpr uint8_t kCtZeroScaleCode = 0x20;      // 0.125 = finfo(float8_e4m3fn).eps

// x rounded to dtype (to nearest, ties to even), as PyTorch stores the float result of an op.
float RoundTo(DType dtype, float x) {
  switch (dtype) {
    case DType::kBF16: return DecodeBF16(EncodeBF16(x));
    case DType::kF16: return DecodeF16(EncodeF16(x));
    case DType::kF32: break;
  }
  return x;
}

float SmallestNormal(DType dtype) { return dtype == DType::kF16 ? 0x1p-14f : 0x1p-126f; }

void EncodeNvfp4Block(const float* x, float divisor, uint8_t* codes) {
  for (int k = 0; k < kNvfp4BlockSize; k += 2) codes[k / 2] = PackNibbles(EncodeE2M1(x[k] / divisor), EncodeE2M1(x[k + 1] / divisor));
}
}  // namespace

std::string_view Nvfp4ScaleRuleName(Nvfp4ScaleRule rule) {
  switch (rule) {
    case Nvfp4ScaleRule::kAmax: return "amax";
    case Nvfp4ScaleRule::kMse: return "mse";
    case Nvfp4ScaleRule::kMseExhaustive: return "mse-exhaustive";
    case Nvfp4ScaleRule::kFourOverSix: return "4over6";
    case Nvfp4ScaleRule::kSearch: return "search";
  }
  return "?";
}

Nvfp4ScaleRule ParseNvfp4ScaleRule(std::string_view name) {
  for (Nvfp4ScaleRule rule : {Nvfp4ScaleRule::kAmax, Nvfp4ScaleRule::kMse, Nvfp4ScaleRule::kMseExhaustive,
                              Nvfp4ScaleRule::kFourOverSix, Nvfp4ScaleRule::kSearch}) {
    if (name == Nvfp4ScaleRuleName(rule)) return rule;
  }
  Fail(ErrorCode::kInvalidArgument,
       "[NVFP4 scale rule] got '{}', expected amax, mse, mse-exhaustive, 4over6 or search", name);
}

std::vector<float> Nvfp4SearchScales(float group_amax) {
  const float s = Nvfp4TensorScale(group_amax, Nvfp4ScaleRule::kSearch);
  if (group_amax == 0.0f) return {s};
  std::vector<float> scales{s};
  for (int i = 14; i <= 48; ++i) {
    if (i != 16) scales.push_back(s * (static_cast<float>(i) / 16.0f));
  }
  return scales;
}

int64_t Nvfp4SearchRowStride(int64_t group_blocks) {
  return std::max<int64_t>(1, (group_blocks + kNvfp4SearchSampleBlocks - 1) / kNvfp4SearchSampleBlocks);
}

double Nvfp4RowSearchError(const float* x, int64_t cols, float tensor_scale) {
  double sum = 0.0;
  for (int64_t b = 0; b < cols / kNvfp4BlockSize; ++b) {
    const float* block = x + b * kNvfp4BlockSize;
    float amax = 0.0f;
    for (int k = 0; k < kNvfp4BlockSize; ++k) amax = std::max(amax, std::fabs(block[k]));
    const Nvfp4Candidates candidates = Nvfp4ScaleCandidates(amax, tensor_scale, Nvfp4ScaleRule::kMse);
    float best = Nvfp4BlockSquaredError(block, candidates.codes[0], tensor_scale);
    for (int i = 1; i < candidates.count; ++i) best = std::min(best, Nvfp4BlockSquaredError(block, candidates.codes[i], tensor_scale));
    sum += best;
  }
  return sum;
}

size_t Nvfp4PickSearchScale(std::span<const double> errors) {
  size_t best = 0;
  for (size_t i = 1; i < errors.size(); ++i) {
    if (errors[i] < errors[best]) best = i;
  }
  return best;
}

float Nvfp4TensorScale(float global_amax, Nvfp4ScaleRule rule) {
  if (global_amax == 0.0f) return 1.0f;
  const float scale_max = rule == Nvfp4ScaleRule::kFourOverSix ? kFourOverSixScaleMax : kE4M3Max;
  return global_amax / (kE2M1Max * scale_max);
}

float Nvfp4Divisor(uint8_t scale_code, float tensor_scalar, Nvfp4Producer producer) {
  return producer == Nvfp4Producer::kModelOpt ? DecodeE4M3(scale_code) * tensor_scalar
                                              : DecodeE4M3(scale_code) / tensor_scalar;
}

float Nvfp4CtGlobalScale(float global_amax, DType dtype) {
  const float amax = std::max(global_amax, SmallestNormal(dtype));
  const float gs = RoundTo(dtype, RoundTo(dtype, 1.0f / amax) * (kE4M3Max * kE2M1Max));
  return std::isfinite(gs) ? gs : 1.0f;
}

uint8_t Nvfp4CtScaleCode(float block_amax, float global_scale, DType dtype) {
  const uint8_t code = EncodeE4M3(std::min(global_scale * RoundTo(dtype, block_amax / kE2M1Max), kE4M3Max));
  return code == 0 ? kCtZeroScaleCode : code;
}

uint8_t Nvfp4AmaxScaleCode(float block_amax, float tensor_scale, float target) {
  float s = block_amax / (target * tensor_scale);
  if (s == 0.0f) s = 1.0f;
  return EncodeE4M3(std::clamp(s, kE4M3MinSubnormal, kE4M3Max));
}

Nvfp4Candidates Nvfp4ScaleCandidates(float block_amax, float tensor_scale, Nvfp4ScaleRule rule) {
  Nvfp4Candidates c{};
  const uint8_t amax_code = Nvfp4AmaxScaleCode(block_amax, tensor_scale);
  c.codes[c.count++] = amax_code;
  switch (rule) {
    case Nvfp4ScaleRule::kAmax:
      break;
    case Nvfp4ScaleRule::kMse:
    case Nvfp4ScaleRule::kSearch:
      for (int offset = -kNvfp4MseCodesBelow; offset <= kNvfp4MseCodesAbove; ++offset) {
        if (offset == 0) continue;
        c.codes[c.count++] = static_cast<uint8_t>(std::clamp(amax_code + offset, 1, int{kE4M3MaxCode}));
      }
      break;
    case Nvfp4ScaleRule::kMseExhaustive:
      for (int code = 1; code <= kE4M3MaxCode; ++code) c.codes[c.count++] = static_cast<uint8_t>(code);
      break;
    case Nvfp4ScaleRule::kFourOverSix:
      c.codes[c.count++] = Nvfp4AmaxScaleCode(block_amax, tensor_scale, 4.0f);
      break;
  }
  return c;
}

float Nvfp4BlockSquaredError(const float* x, uint8_t scale_code, float tensor_scale) {
  const float d = DecodeE4M3(scale_code) * tensor_scale;
  const float r = std::min(1.0f / d, std::numeric_limits<float>::max());  // never 0 · Inf below
  float sse = 0.0f;
  for (int k = 0; k < kNvfp4BlockSize; ++k) {
    const float q = std::fabs(x[k]) * r;
    const float err = DecodeE2M1(EncodeE2M1Magnitude(q)) - q;
    sse += err * err;
  }
  return sse * (d * d);
}

uint8_t Nvfp4SelectScaleCode(const float* block, Nvfp4ScaleRule rule, float tensor_scale) {
  float amax = 0.0f;
  for (int k = 0; k < kNvfp4BlockSize; ++k) amax = std::max(amax, std::fabs(block[k]));
  const Nvfp4Candidates candidates = Nvfp4ScaleCandidates(amax, tensor_scale, rule);
  uint8_t best = candidates.codes[0];
  if (candidates.count == 1) return best;
  float best_sse = Nvfp4BlockSquaredError(block, best, tensor_scale);
  for (int i = 1; i < candidates.count; ++i) {
    const float sse = Nvfp4BlockSquaredError(block, candidates.codes[i], tensor_scale);
    if (sse < best_sse) {
      best_sse = sse;
      best = candidates.codes[i];
    }
  }
  return best;
}

void QuantizeNvfp4RowRef(const float* x, int64_t cols, Nvfp4ScaleRule rule, float tensor_scale,
                         uint8_t* codes, uint8_t* scales) {
  for (int64_t b = 0; b < cols / kNvfp4BlockSize; ++b) {
    const float* block = x + b * kNvfp4BlockSize;
    scales[b] = Nvfp4SelectScaleCode(block, rule, tensor_scale);
    EncodeNvfp4Block(block, Nvfp4Divisor(scales[b], tensor_scale, Nvfp4Producer::kModelOpt), codes + b * kNvfp4BlockSize / 2);
  }
}

void QuantizeNvfp4RowCtRef(const float* x, int64_t cols, DType dtype, float global_scale,
                           uint8_t* codes, uint8_t* scales) {
  for (int64_t b = 0; b < cols / kNvfp4BlockSize; ++b) {
    const float* block = x + b * kNvfp4BlockSize;
    float amax = 0.0f;
    for (int k = 0; k < kNvfp4BlockSize; ++k) amax = std::max(amax, std::fabs(block[k]));
    scales[b] = Nvfp4CtScaleCode(amax, global_scale, dtype);
    EncodeNvfp4Block(block, Nvfp4Divisor(scales[b], global_scale, Nvfp4Producer::kCompressedTensors),
                     codes + b * kNvfp4BlockSize / 2);
  }
}

void DequantizeNvfp4RowRef(const uint8_t* codes, const uint8_t* scales, int64_t cols,
                           float tensor_scalar, Nvfp4Producer producer, float* x) {
  for (int64_t k = 0; k < cols; k += 2) {
    const float d = Nvfp4Divisor(scales[k / kNvfp4BlockSize], tensor_scalar, producer);
    x[k] = DecodeE2M1(LowNibble(codes[k / 2])) * d;
    x[k + 1] = DecodeE2M1(HighNibble(codes[k / 2])) * d;
  }
}

}  // namespace fp4forge
