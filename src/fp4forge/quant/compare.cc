#include "fp4forge/quant/compare.h"

#include <vector>

#include "fp4forge/quant/quantize.h"

namespace fp4forge {

std::optional<Anchor> FindAnchor(const std::string& dist, const FormatTraits& traits) {
  struct Entry {
    const char* dist;
    const char* format;
    const char* rule;
    Anchor anchor;
  };
  // ANCHORS.md §1: 2^20 i.i.d. unit-variance samples. The 9-code MSE window "matches the
  // exhaustive search", so it shares that row.
  static const Entry kAnchors[] = {
      {"gaussian", "nvfp4", "amax", {0.0090, 0.0090}},
      {"gaussian", "nvfp4", "4over6", {0.0076, 0.0076}},
      {"gaussian", "nvfp4", "mse-exhaustive", {0.0066, 0.0066}},
      {"gaussian", "nvfp4", "mse", {0.0066, 0.0066}},
      {"gaussian", "mxfp4", "ocp", {0.0124, 0.0133}},
      {"gaussian", "mxfp4", "round-up", {0.0124, 0.0133}},
      {"gaussian", "mxfp4", "compressed-tensors", {0.0124, 0.0133}},
      {"gaussian", "int4", "asym-g128-f16", {0.0101, 0.0101}},
      {"laplace", "nvfp4", "amax", {0.0086, 0.0086}},
      {"laplace", "nvfp4", "4over6", {0.0076, 0.0076}},
      {"laplace", "nvfp4", "mse-exhaustive", {0.0068, 0.0068}},
      {"laplace", "nvfp4", "mse", {0.0068, 0.0068}},
      {"student-t:3", "nvfp4", "amax", {0.0080, 0.0080}},
      {"student-t:3", "nvfp4", "4over6", {0.0074, 0.0074}},
      {"student-t:3", "nvfp4", "mse-exhaustive", {0.0068, 0.0068}},
      {"student-t:3", "nvfp4", "mse", {0.0068, 0.0068}},
  };
  for (const Entry& e : kAnchors) {
    if (dist == e.dist && traits.format == e.format && traits.rule == e.rule) return e.anchor;
  }
  return std::nullopt;
}

std::vector<QuantSpec> ComparedSpecs() {
  std::vector<QuantSpec> specs;
  for (Nvfp4ScaleRule rule : {Nvfp4ScaleRule::kAmax, Nvfp4ScaleRule::kFourOverSix, Nvfp4ScaleRule::kMse,
                              Nvfp4ScaleRule::kMseExhaustive, Nvfp4ScaleRule::kSearch}) {
    specs.push_back(Nvfp4Spec{rule});
  }
  for (Mxfp4ScaleRule rule : {Mxfp4ScaleRule::kOcp, Mxfp4ScaleRule::kRoundUp, Mxfp4ScaleRule::kCompressedTensors}) {
    specs.push_back(Mxfp4Spec{rule});
  }
  for (bool asymmetric : {false, true}) {
    for (int group_size : {32, 64, 128}) {
      specs.push_back(Int4Spec{{.group_size = group_size, .asymmetric = asymmetric, .scale_dtype = DType::kF16}});
    }
  }
  specs.push_back(Fp8Spec{.per_channel = false});
  specs.push_back(Fp8Spec{.per_channel = true});
  return specs;
}

std::vector<ComparisonRow> CompareFormats(const ConstMatrixView& x, const std::string& data_name,
                                          const std::string& anchor_dist, int threads) {
  std::vector<float> original(static_cast<size_t>(x.size()));
  for (int64_t r = 0; r < x.rows; ++r) LoadRowAsFloat(x, r, &original[r * x.cols]);

  std::vector<ComparisonRow> rows;
  for (const QuantSpec& spec : ComparedSpecs()) {
    const FormatTraits traits = Traits(spec);
    if (x.cols % traits.block_size != 0) continue;
    QuantizeOptions options;
    options.threads = threads;
    options.tensor_name = data_name;
    const QuantizedTensor q = Quantize(spec, x, options);
    const std::vector<float> restored = Dequantize(q, threads);
    ErrorSums sums;
    sums.Add(original.data(), restored.data(), x.size());
    rows.push_back({.traits = traits,
                    .data = data_name,
                    .sums = sums,
                    .anchor = anchor_dist.empty() ? std::nullopt : FindAnchor(anchor_dist, traits)});
  }
  return rows;
}

}  // namespace fp4forge
