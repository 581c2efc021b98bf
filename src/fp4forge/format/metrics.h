// Quantization error of a reconstruction against the original, accumulated in float64.
#pragma once

#include <cstdint>

namespace fp4forge {

struct ErrorMetrics {
  double mse = 0;             // E[(x̂ - x)^2]
  double relative_mse = 0;    // E[(x̂ - x)^2] / E[x^2]
  double sqnr_db = 0;         // -10 log10(relative_mse); +inf for an exact reconstruction
  double max_abs_error = 0;   // max |x̂ - x|
  double cosine = 0;          // <x, x̂> / (|x| |x̂|); 1 when both are zero
};

// Running sums behind ErrorMetrics, so that several tensors can be measured as one.
struct ErrorSums {
  int64_t count = 0;
  double sum_err2 = 0, sum_x2 = 0, sum_y2 = 0, sum_xy = 0, max_abs = 0;

  void Add(const float* original, const float* reconstructed, int64_t n);
  void Add(const ErrorSums& other);
  ErrorMetrics Metrics() const;
};

ErrorMetrics MeasureError(const float* original, const float* reconstructed, int64_t n);

}  // namespace fp4forge
