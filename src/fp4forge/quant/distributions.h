// Seeded synthetic weights for measuring quantization error. The generators are our own (a
// splitmix64 stream, Box-Muller, inverse CDFs, Marsaglia-Tsang gamma), so a seed gives the same
// numbers on every platform and standard library.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace fp4forge {

struct Distribution {
  enum class Kind { kGaussian, kLaplace, kStudentT };
  Kind kind = Kind::kGaussian;
  double nu = 3.0;  // Student-t degrees of freedom (> 2, so that the variance exists)

  std::string Name() const;  // "gaussian", "laplace", "student-t:3"
};

// "gaussian", "laplace" or "student-t:NU"; throws Error(kInvalidArgument).
Distribution ParseDistribution(const std::string& text);

struct Outliers {
  double fraction = 0.0;  // share of samples multiplied by `scale`
  double scale = 1.0;
};

// n i.i.d. samples of unit variance; then every sample whose own uniform draw falls below
// outliers.fraction is multiplied by outliers.scale.
std::vector<float> GenerateSamples(const Distribution& dist, int64_t n, uint64_t seed, const Outliers& outliers = {});

}  // namespace fp4forge
