// GPU quantizers (CUDA): NVFP4 (amax, mse and 4over6 block-scale rules, ModelOpt's arithmetic) and
// MXFP4 (OCP scales), one GPU thread per block, bit-identical to the scalar reference of format/
// on the same input (cuda_quantize_test, run on a device). This header needs no CUDA headers: the
// rest of fp4forge and its tests include it whether or not a GPU is there.
#pragma once

#include <cstdint>
#include <string>

#include "fp4forge/base/dtype.h"
#include "fp4forge/format/quantized_tensor.h"

namespace fp4forge::cuda {

// Whether a CUDA device can be used here (a driver and at least one GPU); its name, or why not.
bool DeviceAvailable();
std::string DeviceDescription();

// Whether the GPU kernels implement `spec`: NVFP4 kAmax, kMse and kFourOverSix with ModelOpt's
// arithmetic, MXFP4 kOcp.
bool Supports(const QuantSpec& spec);

// The kernels on device memory, queued on `stream` (a cudaStream_t; nullptr = the default stream).
// x: rows * cols values of `dtype`, 16-byte aligned, finite (validated by the caller), cols a
// multiple of the block size. codes: rows * cols / 2 bytes; scales: one byte per block.
// `tensor_scale` is NVFP4's S (Nvfp4TensorScale of the tensor's or group's amax for the rule).
void QuantizeNvfp4OnDevice(const void* x, DType dtype, int64_t rows, int64_t cols, Nvfp4ScaleRule rule,
                           float tensor_scale, uint8_t* codes, uint8_t* scales, void* stream);
void QuantizeMxfp4OnDevice(const void* x, DType dtype, int64_t rows, int64_t cols, uint8_t* codes, uint8_t* scales,
                           void* stream);
// max |x| as float32 bits into *amax_bits (device memory, reset here); bits >= 0x7F800000 mean a
// NaN or Inf is present.
void TensorAmaxBitsOnDevice(const void* x, DType dtype, int64_t n, uint32_t* amax_bits, void* stream);

// Copies x to the GPU, quantizes it there and copies the result back: cpu::Quantize's contract for
// the specs Supports() accepts. Throws Error(kUnsupported) for others, Error(kIo) on a CUDA failure.
QuantizedTensor Quantize(const QuantSpec& spec, const ConstMatrixView& x, float scale_amax);

}  // namespace fp4forge::cuda
