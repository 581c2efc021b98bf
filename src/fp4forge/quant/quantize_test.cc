// The validated entry point: every caller mistake is a clear error; valid input is quantized.
#include "fp4forge/quant/quantize.h"

#include <cmath>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "fp4forge/base/error.h"

namespace fp4forge {
namespace {

ConstMatrixView View(const std::vector<float>& x, int64_t rows, int64_t cols) {
  return {.data = x.data(), .dtype = DType::kF32, .rows = rows, .cols = cols};
}

// Runs fn, expecting an Error of `code` whose message contains every string in `parts`.
template <typename Fn>
void ExpectError(Fn&& fn, ErrorCode code, const std::vector<std::string>& parts) {
  try {
    fn();
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    for (const std::string& part : parts) EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
  }
}

TEST(Quantize, RejectsNonFiniteValuesNamingTensorRowAndColumn) {
  std::vector<float> x(4 * 32, 1.0f);
  for (float bad : {NAN, INFINITY, -INFINITY}) {
    x[2 * 32 + 5] = bad;
    QuantizeOptions options;
    options.tensor_name = "model.layers.3.mlp.up_proj.weight";
    ExpectError([&] { Quantize(Nvfp4Spec{}, View(x, 4, 32), options); }, ErrorCode::kInvalidData,
                {"model.layers.3.mlp.up_proj.weight", "row 2", "column 5"});
    x[2 * 32 + 5] = 1.0f;
  }
}

TEST(Quantize, RejectsRowsThatAreNoMultipleOfTheBlock) {
  const std::vector<float> x(3 * 40, 1.0f);
  ExpectError([&] { Quantize(Nvfp4Spec{}, View(x, 3, 40)); }, ErrorCode::kInvalidArgument, {"40", "multiple of 16"});
  ExpectError([&] { Quantize(Mxfp4Spec{}, View(x, 3, 40)); }, ErrorCode::kInvalidArgument, {"multiple of 32"});
  ExpectError([&] { Quantize(Int4Spec{{.group_size = 48}}, View(x, 3, 40)); }, ErrorCode::kInvalidArgument,
              {"group size 48"});
  EXPECT_NO_THROW(Quantize(Fp8Spec{}, View(x, 3, 40)));
}

TEST(Quantize, RejectsEmptyTensorsAndBadGlobalAmax) {
  const std::vector<float> x(32, 2.0f);
  ExpectError([&] { Quantize(Nvfp4Spec{}, View(x, 0, 32)); }, ErrorCode::kInvalidArgument, {"[0, 32]"});
  for (float g : {1.0f, NAN, INFINITY}) {
    QuantizeOptions options;
    options.global_amax = g;
    ExpectError([&] { Quantize(Nvfp4Spec{}, View(x, 1, 32), options); }, ErrorCode::kInvalidArgument,
                {"global amax"});
  }
}

TEST(Quantize, RejectsFp16Int4ScalesThatWouldOverflow) {
  const std::vector<float> x(32, 1e6f);
  ExpectError([&] { Quantize(Int4Spec{{.group_size = 32}}, View(x, 1, 32)); }, ErrorCode::kInvalidData, {"bf16"});
  EXPECT_NO_THROW(Quantize(Int4Spec{{.group_size = 32, .scale_dtype = DType::kBF16}}, View(x, 1, 32)));
}

TEST(Quantize, EqualsTheReferenceAndUsesTheGroupAmax) {
  std::vector<float> x(2 * 64);
  for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(static_cast<float>(i)) * 3.0f;
  const QuantizedTensor want = QuantizeRef(Nvfp4Spec{}, View(x, 2, 64));
  EXPECT_EQ(Quantize(Nvfp4Spec{}, View(x, 2, 64)).codes, want.codes);
  QuantizeOptions options;
  options.global_amax = 12.0f;  // e.g. the joint amax of q, k and v
  const QuantizedTensor fused = Quantize(Nvfp4Spec{}, View(x, 2, 64), options);
  EXPECT_EQ(fused.tensor_scales[0], 12.0f / 2688.0f);
  EXPECT_EQ(fused.block_scales, QuantizeRef(Nvfp4Spec{}, View(x, 2, 64), 12.0f).block_scales);
}

}  // namespace
}  // namespace fp4forge
