#include "fp4forge/format/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace fp4forge {

void ErrorSums::Add(const float* original, const float* reconstructed, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const double x = original[i], y = reconstructed[i], err = y - x;
    sum_err2 += err * err;
    sum_x2 += x * x;
    sum_y2 += y * y;
    sum_xy += x * y;
    max_abs = std::max(max_abs, std::fabs(err));
  }
  count += n;
}

void ErrorSums::Add(const ErrorSums& o) {
  count += o.count;
  sum_err2 += o.sum_err2;
  sum_x2 += o.sum_x2;
  sum_y2 += o.sum_y2;
  sum_xy += o.sum_xy;
  max_abs = std::max(max_abs, o.max_abs);
}

ErrorMetrics ErrorSums::Metrics() const {
  ErrorMetrics m;
  m.mse = count > 0 ? sum_err2 / static_cast<double>(count) : 0.0;
  m.relative_mse = sum_x2 > 0 ? sum_err2 / sum_x2 : (sum_err2 > 0 ? std::numeric_limits<double>::infinity() : 0.0);
  m.sqnr_db = m.relative_mse > 0 ? -10.0 * std::log10(m.relative_mse) : std::numeric_limits<double>::infinity();
  m.max_abs_error = max_abs;
  m.cosine = (sum_x2 > 0 && sum_y2 > 0) ? sum_xy / std::sqrt(sum_x2 * sum_y2) : (sum_x2 == sum_y2 ? 1.0 : 0.0);
  return m;
}

ErrorMetrics MeasureError(const float* original, const float* reconstructed, int64_t n) {
  ErrorSums sums;
  sums.Add(original, reconstructed, n);
  return sums.Metrics();
}

}  // namespace fp4forge
