#include "fp4forge/io/linear_tensors.h"

#include <cmath>
#include <cstring>
#include <vector>

#include <fmt/ranges.h>

#include "fp4forge/base/error.h"
#include "fp4forge/codec/half.h"

namespace fp4forge {
namespace {

std::string ShapeString(const std::vector<int64_t>& shape) {
  return fmt::format("[{}]", fmt::join(shape, ", "));
}

const SafetensorsTensor& Expect(const SafetensorsTensor* t, const std::string& name, const std::string& dtype,
                                const std::vector<int64_t>& shape) {
  if (!t) Fail(ErrorCode::kInvalidData, "[Linear] got no tensor {}, expected {} {}", name, dtype, ShapeString(shape));
  if (t->dtype != dtype || t->shape != shape) {
    Fail(ErrorCode::kInvalidData, "[Linear] got {} {} {}, expected {} {}", name, t->dtype, ShapeString(t->shape),
         dtype, ShapeString(shape));
  }
  return *t;
}

// A per-tensor F32/BF16 scalar of shape [] or [1] (readers must accept both, FORMATS.md §4a note).
float ExpectScalar(const SafetensorsTensor* t, const std::string& name) {
  if (!t) Fail(ErrorCode::kInvalidData, "[Linear] got no tensor {}, expected an F32 scalar", name);
  const std::optional<float> v = t->Scalar();
  if (!v) {
    Fail(ErrorCode::kInvalidData, "[Linear] got {} {} {}, expected an F32 scalar of shape [] or [1]", name, t->dtype,
         ShapeString(t->shape));
  }
  if (!std::isfinite(*v) || *v <= 0) {
    Fail(ErrorCode::kInvalidData, "[Linear] got {} = {}, expected a finite positive scale", name, *v);
  }
  return *v;
}

}  // namespace

LinearTensors FindLinear(const Checkpoint& checkpoint, const std::string& module) {
  const auto find = [&](const char* suffix) { return checkpoint.Find(module + suffix); };
  LinearTensors l;
  l.bias = find(".bias");
  const SafetensorsTensor* packed = find(".weight_packed");  // compressed-tensors 4-bit
  const SafetensorsTensor* weight = packed ? packed : find(".weight");
  if (!weight) Fail(ErrorCode::kInvalidData, "[Linear] got no tensor {}.weight, expected the layer's weight", module);
  const std::string weight_name = module + (packed ? ".weight_packed" : ".weight");
  if (weight->shape.size() != 2) {
    Fail(ErrorCode::kUnsupported, "[Linear] got {} of shape {}, expected a 2-D [out, in] weight", weight_name,
         ShapeString(weight->shape));
  }
  l.weight = weight;
  l.rows = weight->shape[0];
  const SafetensorsTensor* scale = find(".weight_scale");
  if (weight->FloatDType()) {
    l.scheme = LinearScheme::kDense;
    l.cols = weight->shape[1];
  } else if (weight->dtype == "U8" && scale && scale->dtype == "F8_E4M3") {
    l.scheme = LinearScheme::kNvfp4;
    l.cols = 2 * weight->shape[1];
    l.block_scales = &Expect(scale, module + ".weight_scale", "F8_E4M3", {l.rows, l.cols / 16});
    if (packed) {
      l.tensor_scalar = ExpectScalar(find(".weight_global_scale"), module + ".weight_global_scale");
      l.reciprocal_tensor_scalar = true;
      if (const SafetensorsTensor* in = find(".input_global_scale")) {
        l.input_global_scale = ExpectScalar(in, module + ".input_global_scale");
      }
    } else {
      l.tensor_scalar = ExpectScalar(find(".weight_scale_2"), module + ".weight_scale_2");
      if (const SafetensorsTensor* in = find(".input_scale")) {
        l.input_global_scale = 1.0f / ExpectScalar(in, module + ".input_scale");
      }
    }
  } else if (weight->dtype == "U8" && packed && scale && scale->dtype == "U8") {
    l.scheme = LinearScheme::kMxfp4;
    l.cols = 2 * weight->shape[1];
    l.block_scales = &Expect(scale, module + ".weight_scale", "U8", {l.rows, l.cols / 32});
  } else if (weight->dtype == "F8_E4M3") {
    l.scheme = LinearScheme::kFp8;
    l.cols = weight->shape[1];
    if (!scale || scale->dtype != "F32") {
      Fail(ErrorCode::kInvalidData, "[Linear] got {}, expected {}.weight_scale F32 beside the F8_E4M3 weight",
           scale ? fmt::format("{}.weight_scale {}", module, scale->dtype) : "no weight_scale", module);
    }
    if (scale->NumElements() == l.rows && l.rows > 1) {
      if (!(scale->shape == std::vector<int64_t>{l.rows} || scale->shape == std::vector<int64_t>{l.rows, 1})) {
        Fail(ErrorCode::kInvalidData, "[Linear] got {}.weight_scale {}, expected [{}] or [{}, 1]", module,
             ShapeString(scale->shape), l.rows, l.rows);
      }
      l.row_scales = scale;
    } else {
      l.tensor_scalar = ExpectScalar(scale, module + ".weight_scale");
    }
  } else {
    Fail(ErrorCode::kUnsupported, "[Linear] got {} of dtype {}{}, expected F32/BF16/F16, NVFP4 (U8 + F8_E4M3 "
         "weight_scale), MXFP4 (U8 weight_packed + U8 weight_scale) or FP8 (F8_E4M3 + F32 weight_scale)",
         weight_name, weight->dtype, scale ? fmt::format(" with weight_scale {}", scale->dtype) : "");
  }
  if (l.scheme == LinearScheme::kNvfp4 && l.cols % 16 != 0) {
    Fail(ErrorCode::kInvalidData, "[Linear] got {} with {} inputs, expected a multiple of 16", weight_name, l.cols);
  }
  if (l.bias && !(l.bias->FloatDType() && l.bias->shape == std::vector<int64_t>{l.rows})) {
    Fail(ErrorCode::kInvalidData, "[Linear] got {}.bias {} {}, expected a float vector [{}]", module, l.bias->dtype,
         ShapeString(l.bias->shape), l.rows);
  }
  return l;
}

std::vector<float> ReadVector(const Checkpoint& checkpoint, const std::string& name, int64_t length) {
  const SafetensorsTensor* t = checkpoint.Find(name);
  if (!t) Fail(ErrorCode::kInvalidData, "[Checkpoint] got no tensor {}, expected a vector of {}", name, length);
  if (!t->FloatDType() || t->shape != std::vector<int64_t>{length}) {
    Fail(ErrorCode::kInvalidData, "[Checkpoint] got {} {} {}, expected F32/BF16/F16 [{}]", name, t->dtype,
         ShapeString(t->shape), length);
  }
  std::vector<float> v(static_cast<size_t>(length));
  for (int64_t i = 0; i < length; ++i) {
    if (t->dtype == "F32") {
      std::memcpy(&v[i], t->data + 4 * i, 4);
    } else {
      uint16_t bits;
      std::memcpy(&bits, t->data + 2 * i, 2);
      v[i] = t->dtype == "BF16" ? DecodeBF16(bits) : DecodeF16(bits);
    }
  }
  return v;
}

}  // namespace fp4forge
