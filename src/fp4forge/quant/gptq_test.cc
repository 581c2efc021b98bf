// GPTQ and activation-aware block scales: where their definitions reduce to the plain rules they must
// give the same bytes; where inputs are correlated or uneven they must lower the error they target.
#include "fp4forge/quant/gptq.h"

#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "fp4forge/base/error.h"

namespace fp4forge {
namespace {

ConstMatrixView View(const std::vector<float>& x, int64_t rows, int64_t cols) {
  return {.data = x.data(), .dtype = DType::kF32, .rows = rows, .cols = cols};
}

std::vector<float> Gaussian(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  std::vector<float> v(n);
  for (float& x : v) x = normal(rng);
  return v;
}

float Amax(const std::vector<float>& x) {
  float a = 0;
  for (float v : x) a = std::max(a, std::fabs(v));
  return a;
}

// Calibration inputs X [n, k] with correlated columns (a random mixing of independent ones, some
// columns louder than others), as a layer's activations are.
std::vector<float> CorrelatedInputs(int64_t n, int64_t k) {
  const std::vector<float> z = Gaussian(n * k, 11), mix = Gaussian(k * k, 12);
  std::vector<float> x(n * k, 0.0f);
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t j = 0; j < k; ++j) {
      float v = 0;
      for (int64_t p = 0; p < k; ++p) v += z[r * k + p] * mix[p * k + j] * (p < 4 ? 4.0f : 0.3f);
      x[r * k + j] = v * (j % 7 == 0 ? 3.0f : 1.0f);
    }
  }
  return x;
}

std::vector<float> Hessian(const std::vector<float>& x, int64_t n, int64_t k) {
  std::vector<float> h(k * k, 0.0f);
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t i = 0; i < k; ++i) {
      for (int64_t j = 0; j < k; ++j) h[i * k + j] += x[r * k + i] * x[r * k + j];
    }
  }
  return h;
}

// || X (W - Q)^T ||^2: the layer's output error on the calibration inputs.
double OutputError(const std::vector<float>& x, int64_t n, const std::vector<float>& w, const QuantizedTensor& q) {
  const std::vector<float> d = DequantizeRef(q);
  double sum = 0;
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t o = 0; o < q.rows; ++o) {
      double e = 0;
      for (int64_t k = 0; k < q.cols; ++k) e += x[r * q.cols + k] * (w[o * q.cols + k] - d[o * q.cols + k]);
      sum += e * e;
    }
  }
  return sum;
}

TEST(Gptq, InverseFactorInvertsTheDampedHessian) {
  const int64_t n = 200, k = 48;
  const std::vector<float> h = Hessian(CorrelatedInputs(n, k), n, k);
  const std::vector<double> u = GptqInverseFactor(h, k, 0.01, 2);
  EXPECT_EQ(u, GptqInverseFactor(h, k, 0.01, 1));
  double mean = 0;
  for (int64_t i = 0; i < k; ++i) mean += h[i * k + i] / k;
  double worst = 0;  // (U^T U)(H + damp) = I
  for (int64_t i = 0; i < k; ++i) {
    for (int64_t j = 0; j < k; ++j) {
      double v = 0;
      for (int64_t p = 0; p < k; ++p) {
        double hinv = 0;
        for (int64_t q = 0; q < k; ++q) hinv += u[q * k + i] * u[q * k + p];
        v += hinv * (h[p * k + j] + (p == j ? 0.01 * mean : 0.0));
      }
      worst = std::max(worst, std::fabs(v - (i == j ? 1.0 : 0.0)));
      if (i > j) {
        EXPECT_EQ(u[i * k + j], 0.0);  // upper triangular
      }
    }
  }
  // Double arithmetic on a damped H of condition number ~1e3-1e4: residuals of ~1e-9 are rounding.
  EXPECT_LE(worst, 1e-7);
}

// Uncorrelated inputs: U is diagonal, no error is fed back, and GPTQ is round-to-nearest under its rule.
TEST(Gptq, DiagonalHessianGivesTheRulesOwnBytes) {
  const int64_t rows = 24, k = 64;
  const std::vector<float> w = Gaussian(rows * k, 3);
  std::vector<float> h(k * k, 0.0f);
  for (int64_t i = 0; i < k; ++i) h[i * k + i] = 2.5f;
  for (Nvfp4ScaleRule rule : {Nvfp4ScaleRule::kAmax, Nvfp4ScaleRule::kMse}) {
    for (bool act_order : {false, true}) {
      QuantizedTensor q;
      const GptqOptions options{.act_order = act_order, .threads = 2};
      QuantizeGptq(Nvfp4Spec{rule}, View(w, rows, k), FactorGptqHessian(h, k, options), Amax(w), options, q);
      const QuantizedTensor ref = QuantizeRef(Nvfp4Spec{rule}, View(w, rows, k));
      EXPECT_EQ(q.codes, ref.codes) << Nvfp4ScaleRuleName(rule);
      EXPECT_EQ(q.block_scales, ref.block_scales) << Nvfp4ScaleRuleName(rule);
      EXPECT_EQ(q.tensor_scales, ref.tensor_scales);
    }
  }
}

TEST(Gptq, LowersTheOutputErrorOnCorrelatedInputs) {
  const int64_t n = 512, k = 64, rows = 32;
  const std::vector<float> x = CorrelatedInputs(n, k), w = Gaussian(rows * k, 5);
  const std::vector<float> h = Hessian(x, n, k);
  const double rtn = OutputError(x, n, w, QuantizeRef(Nvfp4Spec{}, View(w, rows, k)));
  for (bool act_order : {false, true}) {
    QuantizedTensor q;
    const GptqOptions options{.act_order = act_order};
    QuantizeGptq(Nvfp4Spec{}, View(w, rows, k), FactorGptqHessian(h, k, options), Amax(w), options, q);
    const double gptq = OutputError(x, n, w, q);
    std::printf("act_order %d: output error GPTQ / RTN = %.3f\n", act_order, gptq / rtn);
    // GPTQ's published 4-bit results cut the layer error by a third or more on real activations.
    EXPECT_LT(gptq, 0.8 * rtn) << "act_order " << act_order;
  }
}

TEST(Gptq, Mxfp4DiagonalHessianIsRoundToNearestAndCorrelatedInputsGain) {
  const int64_t n = 512, k = 64, rows = 32;
  const std::vector<float> w = Gaussian(rows * k, 13);
  std::vector<float> diagonal(k * k, 0.0f);
  for (int64_t i = 0; i < k; ++i) diagonal[i * k + i] = 1.0f;
  for (Mxfp4ScaleRule rule : {Mxfp4ScaleRule::kOcp, Mxfp4ScaleRule::kCompressedTensors}) {
    QuantizedTensor q;
    QuantizeGptq(Mxfp4Spec{rule}, View(w, rows, k), FactorGptqHessian(diagonal, k, {}), 0.0f, {}, q);
    const QuantizedTensor ref = QuantizeRef(Mxfp4Spec{rule}, View(w, rows, k));
    EXPECT_EQ(q.codes, ref.codes) << Mxfp4ScaleRuleName(rule);
    EXPECT_EQ(q.block_scales, ref.block_scales) << Mxfp4ScaleRuleName(rule);
  }
  const std::vector<float> x = CorrelatedInputs(n, k);
  QuantizedTensor q;
  QuantizeGptq(Mxfp4Spec{Mxfp4ScaleRule::kCompressedTensors}, View(w, rows, k), FactorGptqHessian(Hessian(x, n, k), k, {}),
               0.0f, {}, q);
  const double rtn = OutputError(x, n, w, QuantizeRef(Mxfp4Spec{Mxfp4ScaleRule::kCompressedTensors}, View(w, rows, k)));
  std::printf("MXFP4: output error GPTQ / RTN = %.3f\n", OutputError(x, n, w, q) / rtn);
  EXPECT_LT(OutputError(x, n, w, q), 0.8 * rtn);
}

TEST(Gptq, ResultDoesNotDependOnThreads) {
  const int64_t n = 128, k = 48, rows = 37;  // a last, partial tile of rows
  const std::vector<float> x = CorrelatedInputs(n, k), w = Gaussian(rows * k, 6);
  const std::vector<float> h = Hessian(x, n, k);
  QuantizedTensor one, three;
  const GptqOptions single{.threads = 1}, multi{.threads = 3};
  QuantizeGptq(Nvfp4Spec{}, View(w, rows, k), FactorGptqHessian(h, k, single), Amax(w), single, one);
  QuantizeGptq(Nvfp4Spec{}, View(w, rows, k), FactorGptqHessian(h, k, multi), Amax(w), multi, three);
  EXPECT_EQ(one.codes, three.codes);
  EXPECT_EQ(one.block_scales, three.block_scales);
}

TEST(Gptq, DeadColumnsAreZero) {
  const int64_t n = 64, k = 32, rows = 4;
  std::vector<float> x = CorrelatedInputs(n, k);
  for (int64_t r = 0; r < n; ++r) x[r * k + 5] = 0.0f;  // input 5 never fires
  const std::vector<float> w = Gaussian(rows * k, 8);
  QuantizedTensor q;
  QuantizeGptq(Nvfp4Spec{}, View(w, rows, k), FactorGptqHessian(Hessian(x, n, k), k, {}), Amax(w), {}, q);
  const std::vector<float> d = DequantizeRef(q);
  for (int64_t r = 0; r < rows; ++r) EXPECT_EQ(d[r * k + 5], 0.0f);
}

TEST(ActivationAware, EqualMomentsGiveTheUnweightedRule) {
  const int64_t rows = 16, k = 128;
  const std::vector<float> w = Gaussian(rows * k, 9);
  const std::vector<double> m(k, 3.0);
  for (Nvfp4ScaleRule rule : {Nvfp4ScaleRule::kAmax, Nvfp4ScaleRule::kMse, Nvfp4ScaleRule::kMseExhaustive,
                              Nvfp4ScaleRule::kFourOverSix}) {
    QuantizedTensor q;
    QuantizeNvfp4Weighted(View(w, rows, k), m, Amax(w), rule, 2, q);
    const QuantizedTensor ref = QuantizeRef(Nvfp4Spec{rule}, View(w, rows, k));
    EXPECT_EQ(q.codes, ref.codes) << Nvfp4ScaleRuleName(rule);
    EXPECT_EQ(q.block_scales, ref.block_scales) << Nvfp4ScaleRuleName(rule);
    EXPECT_EQ(q.tensor_scales, ref.tensor_scales) << Nvfp4ScaleRuleName(rule);
  }
}

// Weighted squared error of each block, the measure the activation-aware rule minimises.
std::vector<double> BlockErrors(const std::vector<float>& w, const QuantizedTensor& q, const std::vector<double>& m) {
  const std::vector<float> d = DequantizeRef(q);
  std::vector<double> e(w.size() / 16, 0.0);
  for (size_t i = 0; i < w.size(); ++i) e[i / 16] += m[i % q.cols] * (w[i] - d[i]) * (w[i] - d[i]);
  return e;
}

TEST(ActivationAware, NeverWorseThanAmaxAndBetterThanMseWhereMomentsAreUneven) {
  const int64_t rows = 64, k = 256;
  const std::vector<float> w = Gaussian(rows * k, 10);
  std::vector<double> m(k);
  std::mt19937 rng(4);
  for (double& v : m) v = std::exp(3.0 * std::normal_distribution<double>()(rng));  // outlier channels
  QuantizedTensor weighted;
  QuantizeNvfp4Weighted(View(w, rows, k), m, Amax(w), Nvfp4ScaleRule::kMse, 1, weighted);
  const std::vector<double> ours = BlockErrors(w, weighted, m);
  const std::vector<double> amax = BlockErrors(w, QuantizeRef(Nvfp4Spec{}, View(w, rows, k)), m);
  const std::vector<double> mse = BlockErrors(w, QuantizeRef(Nvfp4Spec{Nvfp4ScaleRule::kMse}, View(w, rows, k)), m);
  double total = 0, total_mse = 0;
  for (size_t b = 0; b < ours.size(); ++b) {
    EXPECT_LE(ours[b], amax[b]) << "block " << b;
    EXPECT_LE(ours[b], mse[b] * (1 + 1e-12)) << "block " << b;  // same candidates, the right measure
    total += ours[b];
    total_mse += mse[b];
  }
  std::printf("weighted error: activation-aware / mse = %.3f\n", total / total_mse);
  EXPECT_LT(total, 0.99 * total_mse);
}

}  // namespace
}  // namespace fp4forge
