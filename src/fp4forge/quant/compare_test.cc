// compare-formats reproduces the published quantization-error figures of ANCHORS.md §1.
#include "fp4forge/quant/compare.h"

#include <map>
#include <string>

#include <gtest/gtest.h>

#include "fp4forge/quant/distributions.h"

namespace fp4forge {
namespace {

TEST(CompareFormats, ReproducesAnchorsWithinThreePercent) {
  // Source: ANCHORS.md §1 (2^20 i.i.d. unit-variance samples); the issue allows ±3% relative,
  // measured from the nearest end of a published range.
  for (const char* name : {"gaussian", "laplace", "student-t:3"}) {
    const Distribution dist = ParseDistribution(name);
    const std::vector<float> x = GenerateSamples(dist, 1 << 20, 42);
    const ConstMatrixView view{.data = x.data(), .dtype = DType::kF32, .rows = 256, .cols = 4096};
    int anchored = 0;
    for (const ComparisonRow& row : CompareFormats(view, dist.Name(), dist.Name(), 0)) {
      EXPECT_GT(row.sums.Metrics().cosine, 0.97) << row.traits.format << " " << row.traits.rule;
      if (!row.anchor) continue;
      ++anchored;
      const double v = row.sums.Metrics().relative_mse;
      EXPECT_GE(v, row.anchor->low * 0.97) << name << " " << row.traits.format << " " << row.traits.rule;
      EXPECT_LE(v, row.anchor->high * 1.03) << name << " " << row.traits.format << " " << row.traits.rule;
    }
    EXPECT_GE(anchored, 4) << name;
  }
}

TEST(CompareFormats, OrdersTheNvfp4RulesAndBeatsMxfp4) {
  const std::vector<float> x = GenerateSamples(ParseDistribution("gaussian"), 1 << 18, 7);
  const ConstMatrixView view{.data = x.data(), .dtype = DType::kF32, .rows = 64, .cols = 4096};
  std::map<std::string, double> e;
  for (const ComparisonRow& row : CompareFormats(view, "g", "", 1)) e[row.traits.format + "/" + row.traits.rule] = row.sums.Metrics().relative_mse;
  EXPECT_LE(e["nvfp4/mse-exhaustive"], e["nvfp4/mse"]);
  EXPECT_LT(e["nvfp4/mse"], e["nvfp4/4over6"]);
  EXPECT_LT(e["nvfp4/4over6"], e["nvfp4/amax"]);
  // ANCHORS.md §1: on weights MXFP4's error is 1.5-2.5x NVFP4's.
  EXPECT_GT(e["mxfp4/ocp"] / e["nvfp4/amax"], 1.3);
  EXPECT_LT(e["mxfp4/ocp"] / e["nvfp4/amax"], 2.5);
}

}  // namespace
}  // namespace fp4forge
