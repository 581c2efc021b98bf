#include "fp4forge/quant/gptq.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "fp4forge/base/error.h"
#include "fp4forge/base/parallel.h"
#include "fp4forge/codec/e2m1.h"
#include "fp4forge/codec/e4m3.h"
#include "fp4forge/codec/ue8m0.h"
#include "fp4forge/format/mxfp4.h"
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

// sum_p a[p] b[p] over eight interleaved partial sums: independent chains the CPU overlaps (a single
// one waits on each add; the compiler may not reorder floating-point sums itself). The order, and
// so the result, is fixed.
double Dot(const double* a, const double* b, int64_t n) {
  double sums[8] = {};
  int64_t p = 0;
  for (; p + 8 <= n; p += 8) {
    for (int q = 0; q < 8; ++q) sums[q] += a[p + q] * b[p + q];
  }
  for (; p < n; ++p) sums[0] += a[p] * b[p];
  return ((sums[0] + sums[1]) + (sums[2] + sums[3])) + ((sums[4] + sums[5]) + (sums[6] + sums[7]));
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

std::vector<double> GptqInverseFactor(std::span<const float> hessian, int64_t k, double damp, int threads) {
  // With P the order-reversing permutation: P H P = M M^T (M lower), so H = R R^T with R = P M P
  // upper, and H^-1 = U^T U with U = R^-1 = P M^-1 P. One factorisation and one triangular inverse,
  // each with contiguous inner products and independent rows or columns split over threads.
  double mean_diag = 0;
  for (int64_t i = 0; i < k; ++i) mean_diag += hessian[i * k + i];
  mean_diag /= static_cast<double>(k);
  std::vector<double> m(k * k, 0.0);  // P H P + damp, lower triangle, becoming M
  for (int64_t i = 0; i < k; ++i) {
    for (int64_t j = 0; j <= i; ++j) m[i * k + j] = hessian[(k - 1 - i) * k + (k - 1 - j)];
    m[i * k + i] += damp * mean_diag;
  }
  // Columns in panels of kPanel: the panel's own rows first, then every row below it, each row read
  // once per panel (not once per column: the matrix does not fit in cache).
  constexpr int64_t kPanel = 64;
  const int workers = ResolveThreads(threads);
  auto update_row = [&](int64_t i, int64_t first, int64_t last) {  // columns [first, last) of row i
    double* mi = m.data() + i * k;
    for (int64_t j = first; j < last && j < i; ++j) {
      const double* mj = m.data() + j * k;
      mi[j] = (mi[j] - Dot(mi, mj, j)) / mj[j];
    }
    if (i < last) {  // a diagonal entry
      const double d = mi[i] - Dot(mi, mi, i);
      if (!(d > 0)) Fail(ErrorCode::kInvalidData, "[gptq] the Hessian is not positive definite at column {} of {}", k - 1 - i, k);
      mi[i] = std::sqrt(d);
    }
  };
  for (int64_t first = 0; first < k; first += kPanel) {
    const int64_t last = std::min(k, first + kPanel);
    for (int64_t i = first; i < last; ++i) update_row(i, first, last);
    ParallelFor(k - last, workers, [&](int64_t begin, int64_t end) {
      for (int64_t i = last + begin; i < last + end; ++i) update_row(i, first, last);
    });
  }
  // T = (M^-1)^T, upper: row j of T is column j of M^-1, by forward substitution. Columns are
  // independent; a panel of them shares each row of M read.
  std::vector<double> t(k * k, 0.0);
  ParallelFor((k + kPanel - 1) / kPanel, workers, [&](int64_t begin, int64_t end) {
    for (int64_t first = begin * kPanel; first < std::min(k, end * kPanel); first += kPanel) {
      const int64_t last = std::min(k, first + kPanel);
      for (int64_t j = first; j < last; ++j) t[j * k + j] = 1.0 / m[j * k + j];
      for (int64_t i = first + 1; i < k; ++i) {
        const double* mi = m.data() + i * k;
        for (int64_t j = first; j < last && j < i; ++j) {
          double* tj = t.data() + j * k;
          tj[i] = -Dot(mi + j, tj + j, i - j) / mi[i];
        }
      }
    }
  });
  std::vector<double> u(k * k, 0.0);  // U[i][j] = M^-1[k-1-i][k-1-j] = T[k-1-j][k-1-i]
  for (int64_t i = 0; i < k; ++i) {
    for (int64_t j = i; j < k; ++j) u[i * k + j] = t[(k - 1 - j) * k + (k - 1 - i)];
  }
  return u;
}

GptqFactor FactorGptqHessian(std::span<const float> hessian, int64_t k, const GptqOptions& options) {
  GptqFactor f;
  f.order.resize(k);
  std::iota(f.order.begin(), f.order.end(), 0);
  if (options.act_order) {
    std::stable_sort(f.order.begin(), f.order.end(),
                     [&](int64_t a, int64_t b) { return hessian[a * k + a] > hessian[b * k + b]; });
  }
  std::vector<float> h(k * k);  // H in processing order
  f.dead.resize(k);
  for (int64_t i = 0; i < k; ++i) {
    f.dead[i] = hessian[f.order[i] * k + f.order[i]] == 0.0f;
    for (int64_t j = 0; j < k; ++j) h[i * k + j] = hessian[f.order[i] * k + f.order[j]];
    if (f.dead[i]) h[i * k + i] = 1.0f;
  }
  std::vector<double> u;
  for (double damp = options.damp;; damp *= 10) {
    try {
      u = GptqInverseFactor(h, k, damp, options.threads);
      break;
    } catch (const Error&) {
      if (damp >= options.damp * 100) throw;
    }
  }
  f.u.assign(u.begin(), u.end());
  return f;
}

void QuantizeGptq(const QuantSpec& spec, const ConstMatrixView& x, const GptqFactor& factor, float group_amax,
                  const GptqOptions& options, QuantizedTensor& out) {
  const auto* nvfp4 = std::get_if<Nvfp4Spec>(&spec);
  const auto* mxfp4 = std::get_if<Mxfp4Spec>(&spec);
  if (!nvfp4 && !mxfp4) Fail(ErrorCode::kUnsupported, "[gptq] got {}, expected NVFP4 or MXFP4", Traits(spec).format);
  const int block = nvfp4 ? kNvfp4BlockSize : kMxfp4BlockSize;
  const int64_t k = x.cols, blocks = k / block;
  float s = 1.0f;  // NVFP4's S
  if (nvfp4) {
    PrepareOutput(out, x, nvfp4->rule, group_amax);
    s = out.tensor_scales[0];
  } else {
    ResizeQuantized(out, spec, x.rows, x.cols);
  }
  // A block's scale code from its values, and the divisor of a code.
  auto select = [&](const float* values) {
    if (nvfp4) return Nvfp4SelectScaleCode(values, nvfp4->rule, s);
    float amax = 0.0f;
    for (int j = 0; j < block; ++j) amax = std::max(amax, std::fabs(values[j]));
    return Mxfp4ScaleCode(amax, mxfp4->rule);
  };
  auto divisor = [&](uint8_t code) { return nvfp4 ? Nvfp4Divisor(code, s, Nvfp4Producer::kModelOpt) : DecodeUE8M0(code); };
  const std::vector<int64_t>& order = factor.order;
  const std::vector<bool>& dead = factor.dead;
  const std::vector<float>& uf = factor.u;
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
        const int64_t col = order[i], b = col / block;
        for (int64_t t = 0; t < rows; ++t) {
          float* wt = w.data() + t * k;
          if (!fixed[b]) {  // the block's scale, from its values as they stand now
            float values[kMxfp4BlockSize];
            for (int j = 0; j < block; ++j) values[j] = wt[position[b * block + j]];
            scale[t * blocks + b] = select(values);
          }
          const Rounded q = RoundToGrid(wt[i], divisor(scale[t * blocks + b]));
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
