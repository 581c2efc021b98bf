// Every format and scale rule measured side by side on the same data: the numbers behind
// `fp4forge compare-formats`.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "fp4forge/base/dtype.h"
#include "fp4forge/format/metrics.h"
#include "fp4forge/format/quantized_tensor.h"

namespace fp4forge {

// The published figure for a (distribution, format, rule) in ANCHORS.md §1, as a [low, high] range
// of relative MSE (low == high for a single number).
struct Anchor {
  double low;
  double high;
};
std::optional<Anchor> FindAnchor(const std::string& dist, const FormatTraits& traits);

struct ComparisonRow {
  FormatTraits traits;
  std::string data;  // distribution or tensor name
  ErrorSums sums;    // metrics: sums.Metrics()
  std::optional<Anchor> anchor;
};

// NVFP4 with every scale rule, MXFP4 (both scale rules), INT4 (symmetric and asymmetric, groups of
// 32/64/128, FP16 scales) and FP8 (per tensor and per channel).
std::vector<QuantSpec> ComparedSpecs();

// Quantizes and dequantizes x with each spec that fits its row length. `anchor_dist` names the
// synthetic distribution for the ANCHORS.md lookup (empty for real tensors).
std::vector<ComparisonRow> CompareFormats(const ConstMatrixView& x, const std::string& data_name,
                                          const std::string& anchor_dist, int threads);

}  // namespace fp4forge
