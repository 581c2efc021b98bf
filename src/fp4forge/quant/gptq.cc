#include "fp4forge/quant/gptq.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "fp4forge/base/error.h"
#include "fp4forge/base/parallel.h"
#include "fp4forge/codec/e2m1.h"
#include "fp4forge/codec/e4m3.h"
#include "fp4forge/format/nvfp4.h"

namespace fp4forge {
namespace {

// e2m1(x / d) · d and its code: one element on the grid of divisor d.
struct Rounded {
  uint8_t code;
  float value;
};
Rounded RoundToGrid(float x, float divisor) {
  const uint8_t code = EncodeE2M1(x / divisor);
  return {code, DecodeE2M1(code) * divisor};
}

float BlockAmax(const float* x) {
  float amax = 0.0f;
  for (int k = 0; k < kNvfp4BlockSize; ++k) amax = std::max(amax, std::fabs(x[k]));
  return amax;
}

void PrepareOutput(QuantizedTensor& out, const ConstMatrixView& x, Nvfp4ScaleRule rule, float group_amax) {
  ResizeQuantized(out, Nvfp4Spec{rule, Nvfp4Producer::kModelOpt}, x.rows, x.cols);
  out.tensor_scales[0] = Nvfp4TensorScale(group_amax, rule);
}

}  // namespace

void QuantizeNvfp4Weighted(const ConstMatrixView& x, std::span<const double> second_moments, float group_amax,
                           Nvfp4ScaleRule rule, int threads, QuantizedTensor& out) {
  PrepareOutput(out, x, rule, group_amax);
  const float s = out.tensor_scales[0];
  const int64_t blocks = x.cols / kNvfp4BlockSize;
  ParallelFor(x.rows, ResolveThreads(threads), [&](int64_t begin, int64_t end) {
    std::vector<float> row(x.cols);
    for (int64_t r = begin; r < end; ++r) {
      LoadRowAsFloat(x, r, row.data());
      for (int64_t b = 0; b < blocks; ++b) {
        const float* block = row.data() + b * kNvfp4BlockSize;
        const double* m = second_moments.data() + b * kNvfp4BlockSize;
        const Nvfp4Candidates candidates = Nvfp4ScaleCandidates(BlockAmax(block), s, rule);
        uint8_t best = candidates.codes[0];
        double best_error = INFINITY;
        for (int i = 0; i < candidates.count; ++i) {
          const float divisor = Nvfp4Divisor(candidates.codes[i], s, Nvfp4Producer::kModelOpt);
          double error = 0;
          for (int k = 0; k < kNvfp4BlockSize; ++k) {
            const double e = block[k] - RoundToGrid(block[k], divisor).value;
            error += m[k] * e * e;
          }
          if (error < best_error) {
            best_error = error;
            best = candidates.codes[i];
          }
        }
        out.block_scales[r * blocks + b] = best;
        const float divisor = Nvfp4Divisor(best, s, Nvfp4Producer::kModelOpt);
        uint8_t* codes = out.codes.data() + (r * x.cols + b * kNvfp4BlockSize) / 2;
        for (int k = 0; k < kNvfp4BlockSize; k += 2) {
          codes[k / 2] = PackNibbles(RoundToGrid(block[k], divisor).code, RoundToGrid(block[k + 1], divisor).code);
        }
      }
    }
  });
}

std::vector<double> GptqInverseFactor(std::span<const float> hessian, int64_t k, double damp) {
  std::vector<double> a(hessian.begin(), hessian.end());
  double mean_diag = 0;
  for (int64_t i = 0; i < k; ++i) mean_diag += a[i * k + i];
  mean_diag /= static_cast<double>(k);
  for (int64_t i = 0; i < k; ++i) a[i * k + i] += damp * mean_diag;
  // Lower Cholesky factor in place (a = L L^T), then L^-1, then H^-1 = L^-T L^-1, then its factor.
  auto cholesky = [k](std::vector<double>& m) {
    for (int64_t j = 0; j < k; ++j) {
      double d = m[j * k + j];
      for (int64_t p = 0; p < j; ++p) d -= m[j * k + p] * m[j * k + p];
      if (!(d > 0)) {
        Fail(ErrorCode::kInvalidData, "[gptq] the Hessian is not positive definite at column {} of {}", j, k);
      }
      d = std::sqrt(d);
      m[j * k + j] = d;
      for (int64_t i = j + 1; i < k; ++i) {
        double v = m[i * k + j];
        for (int64_t p = 0; p < j; ++p) v -= m[i * k + p] * m[j * k + p];
        m[i * k + j] = v / d;
      }
      for (int64_t i = 0; i < j; ++i) m[i * k + j] = 0;  // the strict upper triangle: zero
    }
  };
  cholesky(a);
  std::vector<double> inv(k * k, 0.0);  // L^-1, lower triangular, by forward substitution
  for (int64_t j = 0; j < k; ++j) {
    inv[j * k + j] = 1.0 / a[j * k + j];
    for (int64_t i = j + 1; i < k; ++i) {
      double v = 0;
      for (int64_t p = j; p < i; ++p) v -= a[i * k + p] * inv[p * k + j];
      inv[i * k + j] = v / a[i * k + i];
    }
  }
  std::vector<double> hinv(k * k);  // L^-T L^-1: (i, j) = sum_p inv[p][i] inv[p][j], p >= max(i, j)
  for (int64_t i = 0; i < k; ++i) {
    for (int64_t j = 0; j <= i; ++j) {
      double v = 0;
      for (int64_t p = i; p < k; ++p) v += inv[p * k + i] * inv[p * k + j];
      hinv[i * k + j] = hinv[j * k + i] = v;
    }
  }
  cholesky(hinv);  // H^-1 = M M^T; U = M^T
  std::vector<double> u(k * k);
  for (int64_t i = 0; i < k; ++i) {
    for (int64_t j = 0; j < k; ++j) u[i * k + j] = hinv[j * k + i];
  }
  return u;
}

void QuantizeNvfp4Gptq(const ConstMatrixView& x, std::span<const float> hessian, float group_amax,
                       const GptqOptions& options, QuantizedTensor& out) {
  const int64_t k = x.cols, blocks = k / kNvfp4BlockSize;
  PrepareOutput(out, x, options.rule, group_amax);
  const float s = out.tensor_scales[0];
  // Column order: as stored, or by decreasing H_kk; dead columns (H_kk = 0) get H_kk = 1 and a zero
  // weight, so they add no error to the others.
  std::vector<int64_t> order(k);
  std::iota(order.begin(), order.end(), 0);
  if (options.act_order) {
    std::stable_sort(order.begin(), order.end(),
                     [&](int64_t a, int64_t b) { return hessian[a * k + a] > hessian[b * k + b]; });
  }
  std::vector<float> h(k * k);  // H in processing order
  std::vector<bool> dead(k);
  for (int64_t i = 0; i < k; ++i) {
    dead[i] = hessian[order[i] * k + order[i]] == 0.0f;
    for (int64_t j = 0; j < k; ++j) h[i * k + j] = hessian[order[i] * k + order[j]];
    if (dead[i]) h[i * k + i] = 1.0f;
  }
  std::vector<double> u;
  for (double damp = options.damp;; damp *= 10) {
    try {
      u = GptqInverseFactor(h, k, damp);
      break;
    } catch (const Error&) {
      if (damp >= options.damp * 100) throw;
    }
  }
  std::vector<float> uf(u.begin(), u.end());
  std::vector<int64_t> position(k);  // of each stored column in processing order
  for (int64_t i = 0; i < k; ++i) position[order[i]] = i;
  // Rows in tiles, so that each row of U read from memory serves the whole tile.
  constexpr int64_t kTile = 8;
  ParallelFor((x.rows + kTile - 1) / kTile, ResolveThreads(options.threads), [&](int64_t begin, int64_t end) {
    std::vector<float> row(k), w(kTile * k);
    std::vector<uint8_t> scale(kTile * blocks), codes(kTile * k);
    for (int64_t tile = begin; tile < end; ++tile) {
      const int64_t first = tile * kTile, rows = std::min(kTile, x.rows - first);
      for (int64_t t = 0; t < rows; ++t) {
        LoadRowAsFloat(x, first + t, row.data());
        for (int64_t i = 0; i < k; ++i) w[t * k + i] = dead[i] ? 0.0f : row[order[i]];  // processing order
      }
      std::vector<bool> fixed(blocks);
      float err[kTile];
      for (int64_t i = 0; i < k; ++i) {
        const int64_t col = order[i], b = col / kNvfp4BlockSize;
        for (int64_t t = 0; t < rows; ++t) {
          float* wt = w.data() + t * k;
          if (!fixed[b]) {  // the block's scale, from its values as they stand now
            float values[kNvfp4BlockSize];
            for (int j = 0; j < kNvfp4BlockSize; ++j) values[j] = wt[position[b * kNvfp4BlockSize + j]];
            scale[t * blocks + b] = Nvfp4SelectScaleCode(values, options.rule, s);
          }
          const Rounded q = RoundToGrid(wt[i], Nvfp4Divisor(scale[t * blocks + b], s, Nvfp4Producer::kModelOpt));
          codes[t * k + col] = q.code;
          err[t] = (wt[i] - q.value) / uf[i * k + i];
        }
        fixed[b] = true;
        const float* ui = uf.data() + i * k;
        for (int64_t t = 0; t < rows; ++t) {
          float* wt = w.data() + t * k;
          for (int64_t j = i + 1; j < k; ++j) wt[j] -= err[t] * ui[j];
        }
      }
      for (int64_t t = 0; t < rows; ++t) {
        const int64_t r = first + t;
        std::copy_n(scale.data() + t * blocks, blocks, out.block_scales.data() + r * blocks);
        for (int64_t c = 0; c < k; c += 2) out.codes[(r * k + c) / 2] = PackNibbles(codes[t * k + c], codes[t * k + c + 1]);
      }
    }
  });
}

}  // namespace fp4forge
