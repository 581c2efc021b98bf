// A C ABI over the codecs and quantizers, loaded by oracle_test.py through ctypes so that PyTorch
// and ml_dtypes can check millions of values. Test-only: not part of the product.
#include <algorithm>
#include <cstdint>

#include "fp4forge/base/error.h"
#include "fp4forge/codec/e2m1.h"
#include "fp4forge/codec/e4m3.h"
#include "fp4forge/codec/half.h"
#include "fp4forge/codec/ue8m0.h"
#include "fp4forge/cpu/ops.h"
#include "fp4forge/quant/quantize.h"

using namespace fp4forge;

namespace {
// out[i] = codec(in[i]) for i < n: the shape of every codec entry point below.
template <auto kCodec, typename In, typename Out>
void Map(const In* in, int64_t n, Out* out) {
  std::transform(in, in + n, out, [](In v) { return static_cast<Out>(kCodec(v)); });
}
}  // namespace

extern "C" {

// W4A4 activations [rows, cols] quantized and dequantized as a Blackwell runtime does (FORMATS.md §3.6).
void fp4forge_quantize_activations_nvfp4(const float* x, int64_t rows, int64_t cols, float global_scale, float* out) {
  cpu::QuantizeActivationsNvfp4(x, rows, cols, global_scale, out);
}

void fp4forge_encode_e4m3(const float* x, int64_t n, uint8_t* out) { Map<EncodeE4M3>(x, n, out); }
void fp4forge_decode_e4m3(const uint8_t* codes, int64_t n, float* out) { Map<DecodeE4M3>(codes, n, out); }
void fp4forge_encode_e2m1(const float* x, int64_t n, uint8_t* out) { Map<EncodeE2M1>(x, n, out); }
void fp4forge_decode_ue8m0(const uint8_t* codes, int64_t n, float* out) { Map<DecodeUE8M0>(codes, n, out); }
void fp4forge_encode_bf16(const float* x, int64_t n, uint16_t* out) { Map<EncodeBF16>(x, n, out); }
void fp4forge_encode_f16(const float* x, int64_t n, uint16_t* out) { Map<EncodeF16>(x, n, out); }

// NVFP4 with the amax rule of a bf16 [rows, cols] matrix. Returns 0, or 1 on a validation error.
int fp4forge_quantize_nvfp4_bf16(const uint16_t* x, int64_t rows, int64_t cols, uint8_t* codes, uint8_t* scales,
                                 float* tensor_scale) {
  try {
    const QuantizedTensor q =
        Quantize(Nvfp4Spec{}, {.data = x, .dtype = DType::kBF16, .rows = rows, .cols = cols});
    std::copy(q.codes.begin(), q.codes.end(), codes);
    std::copy(q.block_scales.begin(), q.block_scales.end(), scales);
    *tensor_scale = q.tensor_scales[0];
    return 0;
  } catch (const Error&) {
    return 1;
  }
}

// MXFP4 (rule 0 = ocp, 1 = round-up) of an f32 [rows, cols] matrix. Returns 0, or 1 on a validation error.
int fp4forge_quantize_mxfp4_f32(const float* x, int64_t rows, int64_t cols, int rule, uint8_t* codes,
                                uint8_t* scales) {
  try {
    const QuantizedTensor q = Quantize(Mxfp4Spec{rule == 0 ? Mxfp4ScaleRule::kOcp : Mxfp4ScaleRule::kRoundUp},
                                       {.data = x, .dtype = DType::kF32, .rows = rows, .cols = cols});
    std::copy(q.codes.begin(), q.codes.end(), codes);
    std::copy(q.block_scales.begin(), q.block_scales.end(), scales);
    return 0;
  } catch (const Error&) {
    return 1;
  }
}

// compressed-tensors' NVFP4 (mxfp4 = 0) or MXFP4 (mxfp4 = 1) of a [rows, cols] matrix of dtype
// 0 = f32, 1 = bf16, 2 = f16. global_scale gets gs (NVFP4). Returns 0, or 1 on a validation error.
int fp4forge_quantize_ct(const void* x, int dtype, int64_t rows, int64_t cols, int mxfp4, uint8_t* codes,
                         uint8_t* scales, float* global_scale) {
  try {
    const DType dtypes[] = {DType::kF32, DType::kBF16, DType::kF16};
    const QuantSpec spec = mxfp4 ? QuantSpec{Mxfp4Spec{Mxfp4ScaleRule::kCompressedTensors}}
                                 : QuantSpec{Nvfp4Spec{Nvfp4ScaleRule::kAmax, Nvfp4Producer::kCompressedTensors}};
    const QuantizedTensor q = Quantize(spec, {.data = x, .dtype = dtypes[dtype], .rows = rows, .cols = cols});
    std::copy(q.codes.begin(), q.codes.end(), codes);
    std::copy(q.block_scales.begin(), q.block_scales.end(), scales);
    if (!mxfp4) *global_scale = q.tensor_scales[0];
    return 0;
  } catch (const Error&) {
    return 1;
  }
}

// out[i] = compressed-tensors' global scale for amax[i] in dtype (0 = f32, 1 = bf16, 2 = f16).
void fp4forge_ct_global_scale(const float* amax, int64_t n, int dtype, float* out) {
  const DType dtypes[] = {DType::kF32, DType::kBF16, DType::kF16};
  std::transform(amax, amax + n, out, [&](float a) { return Nvfp4CtGlobalScale(a, dtypes[dtype]); });
}

}  // extern "C"
