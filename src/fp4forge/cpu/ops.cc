// Highway kernels of ops.h. Attention is the only one of them with real arithmetic at long
// contexts (2 · positions · head_dim FLOPs per query head for scores and again for values); the
// others are linear in the activations and small next to the weight products.

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "fp4forge/cpu/ops.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "fp4forge/base/thread_pool.h"
#include "fp4forge/codec/e2m1.h"
#include "fp4forge/codec/e4m3.h"
#include "fp4forge/codec/half.h"
#include "fp4forge/cpu/ops.h"

HWY_BEFORE_NAMESPACE();
namespace fp4forge::cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;

HWY_INLINE float Dot(const float* HWY_RESTRICT a, const float* HWY_RESTRICT b, int64_t n) {
  const DF df;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  VF acc = hn::Zero(df);
  int64_t i = 0;
  for (; i + lanes <= n; i += lanes) acc = hn::MulAdd(hn::LoadU(df, a + i), hn::LoadU(df, b + i), acc);
  float sum = hn::GetLane(hn::SumOfLanes(df, acc));
  for (; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

// y[0, n) += w · x[0, n)
HWY_INLINE void AddScaled(float w, const float* HWY_RESTRICT x, int64_t n, float* HWY_RESTRICT y) {
  const DF df;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  const VF wv = hn::Set(df, w);
  int64_t i = 0;
  for (; i + lanes <= n; i += lanes) hn::StoreU(hn::MulAdd(wv, hn::LoadU(df, x + i), hn::LoadU(df, y + i)), df, y + i);
  for (; i < n; ++i) y[i] += w * x[i];
}

void RmsNormT(const float* x, int64_t rows, int64_t cols, const float* weight, float eps, float* out) {
  const DF df;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * cols;
    float* o = out + r * cols;
    const float inv = 1.0f / std::sqrt(Dot(xr, xr, cols) / static_cast<float>(cols) + eps);
    const VF iv = hn::Set(df, inv);
    int64_t i = 0;
    for (; i + lanes <= cols; i += lanes) {
      hn::StoreU(hn::Mul(hn::LoadU(df, weight + i), hn::Mul(hn::LoadU(df, xr + i), iv)), df, o + i);
    }
    for (; i < cols; ++i) o[i] = weight[i] * (xr[i] * inv);
  }
}

// Query rows × heads [begin, end) of Attention; `scores` holds one row of positions.
void AttentionT(const AttentionShape& s, const float* q, int64_t q_stride, const float* k, const float* v,
                float* out, int64_t begin, int64_t end, float* scores) {
  const int64_t group = s.num_heads / s.num_kv_heads;
  const int64_t kv_stride = s.num_kv_heads * s.head_dim;
  const float scale = 1.0f / std::sqrt(static_cast<float>(s.head_dim));
  for (int64_t item = begin; item < end; ++item) {
    const int64_t i = item / s.num_heads, h = item % s.num_heads, g = h / group;
    const int64_t pos = s.first_position + i;
    const int64_t lo = s.sliding_window > 0 ? std::max<int64_t>(0, pos - s.sliding_window + 1) : 0;
    const float* qi = q + i * q_stride + h * s.head_dim;
    float max_score = -std::numeric_limits<float>::infinity();
    for (int64_t j = lo; j <= pos; ++j) {
      scores[j] = Dot(qi, k + j * kv_stride + g * s.head_dim, s.head_dim) * scale;
      max_score = std::max(max_score, scores[j]);
    }
    float sum = 0;
    for (int64_t j = lo; j <= pos; ++j) sum += scores[j] = std::exp(scores[j] - max_score);
    float* o = out + i * s.num_heads * s.head_dim + h * s.head_dim;
    std::fill(o, o + s.head_dim, 0.0f);
    for (int64_t j = lo; j <= pos; ++j) AddScaled(scores[j] / sum, v + j * kv_stride + g * s.head_dim, s.head_dim, o);
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace fp4forge::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace fp4forge::cpu {

HWY_EXPORT(RmsNormT);
HWY_EXPORT(AttentionT);

void RmsNorm(const float* x, int64_t rows, int64_t cols, const float* weight, float eps, float* out) {
  HWY_DYNAMIC_DISPATCH(RmsNormT)(x, rows, cols, weight, eps, out);
}

void RmsNormRef(const float* x, int64_t rows, int64_t cols, const float* weight, float eps, float* out) {
  for (int64_t r = 0; r < rows; ++r) {
    double sum = 0;
    for (int64_t i = 0; i < cols; ++i) sum += static_cast<double>(x[r * cols + i]) * x[r * cols + i];
    const double inv = 1.0 / std::sqrt(sum / static_cast<double>(cols) + eps);
    for (int64_t i = 0; i < cols; ++i) out[r * cols + i] = static_cast<float>(weight[i] * (x[r * cols + i] * inv));
  }
}

void ApplyRope(float* x, int64_t num_heads, int64_t head_dim, int64_t half, const float* cos, const float* sin) {
  for (int64_t h = 0; h < num_heads; ++h) {
    float* xh = x + h * head_dim;
    for (int64_t i = 0; i < half; ++i) {
      const float a = xh[i], b = xh[i + half];
      xh[i] = a * cos[i] - b * sin[i];
      xh[i + half] = b * cos[i] + a * sin[i];
    }
  }
}

void Attention(const AttentionShape& shape, const float* q, int64_t q_stride, const float* k, const float* v,
               float* out, ThreadPool& pool) {
  const int64_t positions = shape.first_position + shape.num_tokens;
  pool.Run(shape.num_tokens * shape.num_heads, [&](int64_t begin, int64_t end) {
    thread_local std::vector<float> scores;
    if (static_cast<int64_t>(scores.size()) < positions) scores.resize(positions);
    HWY_DYNAMIC_DISPATCH(AttentionT)(shape, q, q_stride, k, v, out, begin, end, scores.data());
  });
}

void AttentionRef(const AttentionShape& s, const float* q, int64_t q_stride, const float* k, const float* v,
                  float* out) {
  const int64_t group = s.num_heads / s.num_kv_heads;
  const int64_t kv_stride = s.num_kv_heads * s.head_dim;
  std::vector<double> scores(s.first_position + s.num_tokens);
  for (int64_t i = 0; i < s.num_tokens; ++i) {
    for (int64_t h = 0; h < s.num_heads; ++h) {
      const int64_t g = h / group, pos = s.first_position + i;
      const int64_t lo = s.sliding_window > 0 ? std::max<int64_t>(0, pos - s.sliding_window + 1) : 0;
      double max_score = -std::numeric_limits<double>::infinity(), sum = 0;
      for (int64_t j = lo; j <= pos; ++j) {
        double dot = 0;
        for (int64_t d = 0; d < s.head_dim; ++d) {
          dot += static_cast<double>(q[i * q_stride + h * s.head_dim + d]) * k[j * kv_stride + g * s.head_dim + d];
        }
        scores[j] = dot / std::sqrt(static_cast<double>(s.head_dim));
        max_score = std::max(max_score, scores[j]);
      }
      for (int64_t j = lo; j <= pos; ++j) sum += scores[j] = std::exp(scores[j] - max_score);
      for (int64_t d = 0; d < s.head_dim; ++d) {
        double o = 0;
        for (int64_t j = lo; j <= pos; ++j) o += scores[j] / sum * v[j * kv_stride + g * s.head_dim + d];
        out[i * s.num_heads * s.head_dim + h * s.head_dim + d] = static_cast<float>(o);
      }
    }
  }
}

void SiluMul(float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) gate[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

void GeluTanhMul(float* gate, const float* up, int64_t n) {
  constexpr float kSqrt2OverPi = 0.7978845608028654f;
  for (int64_t i = 0; i < n; ++i) {
    const float x = gate[i];
    gate[i] = 0.5f * x * (1.0f + std::tanh(kSqrt2OverPi * (x + 0.044715f * x * x * x))) * up[i];
  }
}

void QuantizeActivationsNvfp4(const float* x, int64_t rows, int64_t cols, float global_scale, float* out) {
  const float inverse_global = 1.0f / global_scale;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t b = 0; b < cols; b += 16) {
      float block[16], amax = 0;
      for (int k = 0; k < 16; ++k) {
        block[k] = DecodeBF16(EncodeBF16(x[r * cols + b + k]));
        amax = std::max(amax, std::fabs(block[k]));
      }
      const float sf = DecodeE4M3(EncodeE4M3(std::min(global_scale * amax * (1.0f / 6.0f), kE4M3Max)));
      const float output_scale = sf != 0 ? 1.0f / (sf * inverse_global) : 0.0f;
      for (int k = 0; k < 16; ++k) {
        out[r * cols + b + k] = DecodeE2M1(EncodeE2M1(block[k] * output_scale)) * sf * inverse_global;
      }
    }
  }
}

}  // namespace fp4forge::cpu
#endif  // HWY_ONCE
