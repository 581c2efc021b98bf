// Products of float32 activations with weight matrices as a checkpoint stores them (BF16/F16/F32,
// NVFP4, MXFP4, FP8 E4M3), decoding the weights in registers a row at a time: nothing is ever
// dequantized into a whole-matrix buffer. The engine's Linear layers are all one call here.
//
// Napkin math for decoding at batch 1: every weight byte is read once per token, so a matrix of
// N x K costs N·K·(bits/8) bytes of memory traffic (NVFP4: 4.5 bits with its E4M3 block scales,
// BF16: 16) and 2·N·K FLOPs; at ~10 GB/s of read bandwidth per core that is the bound.
#pragma once

#include <cstdint>
#include <string_view>

#include "fp4forge/format/nvfp4.h"

namespace fp4forge {
class ThreadPool;
}

namespace fp4forge::cpu {

enum class WeightEncoding { kF32, kBF16, kF16, kNvfp4, kMxfp4, kFp8 };
std::string_view WeightEncodingName(WeightEncoding encoding);  // "f32", "bf16", ..., "nvfp4"

// One [rows, cols] weight matrix (a Linear's [out, in]) borrowed from its owner, usually the
// mapped checkpoint. Pointers need no alignment. Row r's elements start at r · cols elements.
struct WeightMatrix {
  WeightEncoding encoding = WeightEncoding::kBF16;
  int64_t rows = 0;
  int64_t cols = 0;  // NVFP4: multiple of 16; MXFP4: multiple of 32
  const uint8_t* values = nullptr;  // F32/BF16/F16 elements; E2M1 codes [rows, cols/2] (element 2k in
                                    // the low nibble); E4M3 codes [rows, cols]
  const uint8_t* block_scales = nullptr;  // NVFP4: E4M3 [rows, cols/16]; MXFP4: UE8M0 [rows, cols/32]
  float tensor_scalar = 1.0f;  // NVFP4: ModelOpt weight_scale_2 (S) or compressed-tensors
                               // weight_global_scale (1/S), as `producer` says; FP8 per tensor: its scale
  Nvfp4Producer producer = Nvfp4Producer::kModelOpt;
  const uint8_t* row_scales = nullptr;  // FP8 per channel: F32 [rows] (then tensor_scalar is unused)

  int64_t StoredBytes() const;  // bytes one pass over the matrix reads
  float Fp8Scale(int64_t row) const;  // FP8: row's scale (per channel) or tensor_scalar (per tensor)
};

// Rows [row_begin, row_end) of w as float32 into out ([row_end - row_begin, cols]): the scalar
// reference, built on format/'s row decoders (NVFP4: e2m1 · Nvfp4Divisor, the product every consumer
// computes; MXFP4: e2m1 · 2^e; FP8: e4m3 · scale).
void DecodeRowsRef(const WeightMatrix& w, int64_t row_begin, int64_t row_end, float* out);
// The same with SIMD: equal to DecodeRowsRef bit for bit on every target.
void DecodeRows(const WeightMatrix& w, int64_t row_begin, int64_t row_end, float* out);

// y[m, n] = Σ_k x[m, k] · w[n, k] for m < num_rows (x: [num_rows, w.cols], y: [num_rows, w.rows],
// both row-major float32), rows of w split over the pool's threads. Sums are float32 in an order
// fixed by the target's vector width: the result differs from MatMulRef by rounding only, and does
// not depend on the number of threads. One exception, for speed at decode: with num_rows == 1,
// NVFP4 and MXFP4 weights meet x rounded to int16 with one scale per weight block (amax / 32767),
// which moves each activation by at most 2^-16 of its block's largest (BF16 activations, which GPU
// runtimes feed these weights, are rounded by up to 2^-9 of themselves).
void MatMul(const WeightMatrix& w, const float* x, int64_t num_rows, float* y, ThreadPool& pool);
// The reference: DecodeRowsRef, then each dot product summed in double.
void MatMulRef(const WeightMatrix& w, const float* x, int64_t num_rows, float* y);

}  // namespace fp4forge::cpu
