#include "fp4forge/cuda/quantize.h"

#include <cuda_runtime.h>

#include <variant>

#include <fmt/format.h>

#include "fp4forge/base/error.h"
#include "fp4forge/cuda/kernels.h"

namespace fp4forge::cuda {

namespace {

void Check(cudaError_t status, const char* what) {
  if (status != cudaSuccess) Fail(ErrorCode::kIo, "[cuda] {}: {}", what, cudaGetErrorString(status));
}

}  // namespace

bool DeviceAvailable() {
  int count = 0;
  return cudaGetDeviceCount(&count) == cudaSuccess && count > 0;
}

std::string DeviceDescription() {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) return fmt::format("no CUDA device ({})", cudaGetErrorString(status));
  if (count == 0) return "no CUDA device";
  cudaDeviceProp p;
  Check(cudaGetDeviceProperties(&p, 0), "cudaGetDeviceProperties");
  return fmt::format("{} (sm_{}{}, {} SMs, {:.0f} GiB)", p.name, p.major, p.minor, p.multiProcessorCount,
                     p.totalGlobalMem / 1073741824.0);
}

bool Supports(const QuantSpec& spec) {
  if (const auto* n = std::get_if<Nvfp4Spec>(&spec)) {
    return n->producer == Nvfp4Producer::kModelOpt &&
           (n->rule == Nvfp4ScaleRule::kAmax || n->rule == Nvfp4ScaleRule::kMse || n->rule == Nvfp4ScaleRule::kFourOverSix);
  }
  if (const auto* m = std::get_if<Mxfp4Spec>(&spec)) return m->rule == Mxfp4ScaleRule::kOcp;
  return false;
}

void QuantizeNvfp4OnDevice(const void* x, DType dtype, int64_t rows, int64_t cols, Nvfp4ScaleRule rule,
                           float tensor_scale, uint8_t* codes, uint8_t* scales, void* stream) {
  if (!Supports(Nvfp4Spec{rule})) {
    Fail(ErrorCode::kUnsupported, "[cuda] NVFP4 rule '{}' has no GPU kernel (amax, mse and 4over6 do)", Nvfp4ScaleRuleName(rule));
  }
  Check(LaunchQuantizeNvfp4(x, dtype, rows * cols / kNvfp4BlockSize, rule, tensor_scale, codes, scales,
                            static_cast<cudaStream_t>(stream)), "QuantizeNvfp4Kernel");
}

void QuantizeMxfp4OnDevice(const void* x, DType dtype, int64_t rows, int64_t cols, uint8_t* codes, uint8_t* scales,
                           void* stream) {
  Check(LaunchQuantizeMxfp4(x, dtype, rows * cols / kMxfp4BlockSize, codes, scales, static_cast<cudaStream_t>(stream)),
        "QuantizeMxfp4Kernel");
}

void TensorAmaxBitsOnDevice(const void* x, DType dtype, int64_t n, uint32_t* amax_bits, void* stream) {
  Check(LaunchTensorAmaxBits(x, dtype, n, amax_bits, static_cast<cudaStream_t>(stream)), "AmaxBitsKernel");
}

QuantizedTensor Quantize(const QuantSpec& spec, const ConstMatrixView& x, float scale_amax) {
  if (!Supports(spec)) Fail(ErrorCode::kUnsupported, "[cuda] {} {} has no GPU kernel", Traits(spec).format, Traits(spec).rule);
  QuantizedTensor q;
  ResizeQuantized(q, spec, x.rows, x.cols);
  SetTensorScale(q, scale_amax, x.dtype);
  const size_t in_bytes = static_cast<size_t>(x.size()) * DTypeBytes(x.dtype);
  void* d_x = nullptr;
  uint8_t *d_codes = nullptr, *d_scales = nullptr;
  Check(cudaMalloc(&d_x, in_bytes), "cudaMalloc");
  Check(cudaMalloc(&d_codes, q.codes.size()), "cudaMalloc");
  Check(cudaMalloc(&d_scales, q.block_scales.size()), "cudaMalloc");
  Check(cudaMemcpy(d_x, x.data, in_bytes, cudaMemcpyHostToDevice), "cudaMemcpy");
  if (std::holds_alternative<Nvfp4Spec>(spec)) {
    QuantizeNvfp4OnDevice(d_x, x.dtype, x.rows, x.cols, std::get<Nvfp4Spec>(spec).rule, q.tensor_scales[0], d_codes,
                          d_scales, nullptr);
  } else {
    QuantizeMxfp4OnDevice(d_x, x.dtype, x.rows, x.cols, d_codes, d_scales, nullptr);
  }
  Check(cudaMemcpy(q.codes.data(), d_codes, q.codes.size(), cudaMemcpyDeviceToHost), "cudaMemcpy");
  Check(cudaMemcpy(q.block_scales.data(), d_scales, q.block_scales.size(), cudaMemcpyDeviceToHost), "cudaMemcpy");
  Check(cudaFree(d_x), "cudaFree");
  Check(cudaFree(d_codes), "cudaFree");
  Check(cudaFree(d_scales), "cudaFree");
  return q;
}

}  // namespace fp4forge::cuda
