// Calibrated quantizers: NVFP4 block scales weighted by the calibration inputs' second moments
// (activation-aware), and GPTQ on the NVFP4 or MXFP4 grid. Both write standard bytes (NVFP4 in
// ModelOpt's arithmetic: x ~= e2m1 · fl(e4m3(scale) · S), S = group amax / 2688) that every runtime
// loads.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "fp4forge/base/dtype.h"
#include "fp4forge/format/quantized_tensor.h"

namespace fp4forge {

// Activation-aware block scales: each block of 16 takes, among the candidates of `rule`
// (nvfp4.h: Nvfp4ScaleCandidates), the code of least error weighted by the input's second moment,
// sum_k m_k (x_k - q_k)^2 with m_k = sum over calibration rows of input_k^2 (the diagonal of X^T X):
// what the layer's output error on the calibration set would be if the inputs were uncorrelated.
// The amax code is tried first and replaced only by a strictly smaller error, so no block is worse
// than the amax rule in this measure; with all m_k equal the pick is the unweighted rule's
// (Nvfp4SelectScaleCode). rule: kAmax (then the weights change nothing), kMse, kMseExhaustive or
// kFourOverSix. Expects validated input (Quantize's checks), cols % 16 == 0,
// second_moments.size() == cols, group_amax >= max |x|.
void QuantizeNvfp4Weighted(const ConstMatrixView& x, std::span<const double> second_moments, float group_amax,
                           Nvfp4ScaleRule rule, int threads, QuantizedTensor& out);

struct GptqOptions {
  double damp = 0.01;     // H += damp · mean(diag H) · I before inverting (GPTQ's percdamp)
  bool act_order = false;  // columns in order of decreasing H_kk (GPTQ's desc_act)
  int threads = 0;
};

// What GPTQ needs of a Hessian H = X^T X [K, K] (row-major, symmetric) over the calibration rows,
// computed once for all the weights that share the input (a fused group): the column order (as
// stored, or by decreasing H_kk with act_order), which columns are dead (H_kk = 0: their input is
// always zero; quantized as zero, as GPTQ does), and U, the upper Cholesky factor of H^-1 in that
// order (float). Throws Error(kInvalidData) when H stays not positive definite after raising the
// damping 100-fold.
struct GptqFactor {
  std::vector<int64_t> order;  // processing position -> stored column
  std::vector<bool> dead;      // by processing position
  std::vector<float> u;        // [K, K]
};
GptqFactor FactorGptqHessian(std::span<const float> hessian, int64_t k, const GptqOptions& options);

// GPTQ (Frantar et al. 2022) on the grid of a block format, NVFP4 or MXFP4, for a weight x [N, K]
// whose inputs `factor` describes: columns are quantized one at a time, each one's rounding error,
// scaled by U, fed back into the columns not yet quantized. Each block's scale follows the spec's
// rule applied to the block's values as error feedback has left them when GPTQ reaches the first of
// its columns, so every column is quantized with its block's final scale. NVFP4: ModelOpt's
// arithmetic, S from `group_amax` (a fused group's members share it); MXFP4: no tensor scale
// (group_amax unused). Rows are independent (each row's error only moves its own later columns), so
// they run in parallel with identical results for every thread count. Throws Error(kUnsupported)
// for other formats; expects validated input, cols a multiple of the block size.
void QuantizeGptq(const QuantSpec& spec, const ConstMatrixView& x, const GptqFactor& factor, float group_amax,
                  const GptqOptions& options, QuantizedTensor& out);

// The upper Cholesky factor U of H^-1 (H^-1 = U^T U), [K, K] row-major, of H + damp · mean(diag H) · I,
// in double: what GPTQ's error feedback multiplies by; the same for every thread count. Throws
// Error(kInvalidData) when not positive definite.
std::vector<double> GptqInverseFactor(std::span<const float> hessian, int64_t k, double damp, int threads = 0);

}  // namespace fp4forge
