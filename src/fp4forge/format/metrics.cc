#include "fp4forge/format/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace fp4forge {

ErrorMetrics MeasureError(const float* original, const float* reconstructed, int64_t n) {
  double sum_err2 = 0, sum_x2 = 0, sum_y2 = 0, sum_xy = 0, max_abs = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double x = original[i], y = reconstructed[i], err = y - x;
    sum_err2 += err * err;
    sum_x2 += x * x;
    sum_y2 += y * y;
    sum_xy += x * y;
    max_abs = std::max(max_abs, std::fabs(err));
  }
  ErrorMetrics m;
  m.mse = n > 0 ? sum_err2 / static_cast<double>(n) : 0.0;
  m.relative_mse = sum_x2 > 0 ? sum_err2 / sum_x2 : (sum_err2 > 0 ? std::numeric_limits<double>::infinity() : 0.0);
  m.sqnr_db = m.relative_mse > 0 ? -10.0 * std::log10(m.relative_mse) : std::numeric_limits<double>::infinity();
  m.max_abs_error = max_abs;
  m.cosine = (sum_x2 > 0 && sum_y2 > 0) ? sum_xy / std::sqrt(sum_x2 * sum_y2) : (sum_x2 == sum_y2 ? 1.0 : 0.0);
  return m;
}

}  // namespace fp4forge
