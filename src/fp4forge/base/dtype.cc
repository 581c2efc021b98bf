#include "fp4forge/base/dtype.h"

#include "fp4forge/base/error.h"

namespace fp4forge {

std::string_view DTypeName(DType dtype) {
  switch (dtype) {
    case DType::kF32: return "f32";
    case DType::kBF16: return "bf16";
    case DType::kF16: return "f16";
  }
  return "?";
}

DType ParseDType(std::string_view name) {
  for (DType dtype : {DType::kF32, DType::kBF16, DType::kF16}) {
    if (name == DTypeName(dtype)) return dtype;
  }
  Fail(ErrorCode::kInvalidArgument, "[ParseDType] got '{}', expected one of f32, bf16, f16", name);
}

}  // namespace fp4forge
