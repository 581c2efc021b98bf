// Element types of the tensors fp4forge reads as quantization input.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace fp4forge {

enum class DType { kF32, kBF16, kF16 };

constexpr size_t DTypeBytes(DType dtype) { return dtype == DType::kF32 ? 4 : 2; }

// "f32", "bf16", "f16".
std::string_view DTypeName(DType dtype);
// Inverse of DTypeName; throws Error(kInvalidArgument) naming the accepted spellings.
DType ParseDType(std::string_view name);

// A row-major matrix borrowed from the caller: rows × cols elements of `dtype`, row stride = cols.
struct ConstMatrixView {
  const void* data = nullptr;
  DType dtype = DType::kF32;
  int64_t rows = 0;
  int64_t cols = 0;

  int64_t size() const { return rows * cols; }
  const uint8_t* RowBytes(int64_t row) const {
    return static_cast<const uint8_t*>(data) + row * cols * static_cast<int64_t>(DTypeBytes(dtype));
  }
};

}  // namespace fp4forge
