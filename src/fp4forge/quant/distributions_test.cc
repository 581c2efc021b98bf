#include "fp4forge/quant/distributions.h"

#include <cmath>

#include <gtest/gtest.h>

#include "fp4forge/base/error.h"

namespace fp4forge {
namespace {

struct Moments {
  double mean, variance, kurtosis;
};
Moments Measure(const std::vector<float>& v) {
  double s1 = 0, s2 = 0, s4 = 0;
  for (float x : v) s1 += x;
  const double mean = s1 / v.size();
  for (float x : v) {
    const double d = x - mean;
    s2 += d * d;
    s4 += d * d * d * d;
  }
  const double var = s2 / v.size();
  return {mean, var, s4 / v.size() / (var * var)};
}

TEST(Distributions, AreSeededAndReproducible) {
  const Distribution d = ParseDistribution("laplace");
  EXPECT_EQ(GenerateSamples(d, 1000, 5), GenerateSamples(d, 1000, 5));
  EXPECT_NE(GenerateSamples(d, 1000, 5), GenerateSamples(d, 1000, 6));
}

TEST(Distributions, HaveUnitVarianceAndTheirKurtosis) {
  // 2^20 samples: the standard error of the variance is about sqrt(kurtosis - 1) / 1024, so 2% is
  // several sigmas for Gaussian and Laplace; Student-t(5) has a heavy-tailed estimator (5%).
  const struct { const char* name; double kurtosis, variance_tol, kurtosis_tol; } cases[] = {
      {"gaussian", 3.0, 0.02, 0.1}, {"laplace", 6.0, 0.02, 0.3}, {"student-t:5", 9.0, 0.05, 3.0}};
  for (const auto& c : cases) {
    const Moments m = Measure(GenerateSamples(ParseDistribution(c.name), 1 << 20, 1));
    EXPECT_NEAR(m.mean, 0.0, 0.01) << c.name;
    EXPECT_NEAR(m.variance, 1.0, c.variance_tol) << c.name;
    EXPECT_NEAR(m.kurtosis, c.kurtosis, c.kurtosis_tol) << c.name;
  }
}

TEST(Distributions, PlantsOutliers) {
  const Distribution d = ParseDistribution("gaussian");
  const std::vector<float> v = GenerateSamples(d, 1 << 16, 3, {.fraction = 0.01, .scale = 100.0});
  int big = 0;
  for (float x : v) big += std::fabs(x) > 10.0f;
  EXPECT_GT(big, 400);  // ~1% of 65536 = 655, most of them beyond 10 sigma
  EXPECT_LT(big, 700);
}

TEST(Distributions, RejectsUnknownNames) {
  EXPECT_THROW(ParseDistribution("uniform"), Error);
  EXPECT_THROW(ParseDistribution("student-t:2"), Error);
  EXPECT_THROW(ParseDistribution("student-t:x"), Error);
  EXPECT_EQ(ParseDistribution("student-t:3").Name(), "student-t:3");
}

}  // namespace
}  // namespace fp4forge
