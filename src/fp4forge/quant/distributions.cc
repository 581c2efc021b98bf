#include "fp4forge/quant/distributions.h"

#include <charconv>
#include <cmath>
#include <numbers>

#include <fmt/format.h>

#include "fp4forge/base/error.h"

namespace fp4forge {

namespace {

class Random {
 public:
  explicit Random(uint64_t seed) : state_(seed) {}

  uint64_t Next() {  // splitmix64
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in the open interval (0, 1).
  double Uniform() { return (static_cast<double>(Next() >> 11) + 0.5) * 0x1p-53; }
  double Normal() {  // Box-Muller, one of the pair
    return std::sqrt(-2.0 * std::log(Uniform())) * std::cos(2.0 * std::numbers::pi * Uniform());
  }
  // Gamma(shape, 1) by Marsaglia & Tsang (2000); shape < 1 via the boost U^(1/shape).
  double Gamma(double shape) {
    if (shape < 1.0) return Gamma(shape + 1.0) * std::pow(Uniform(), 1.0 / shape);
    const double d = shape - 1.0 / 3.0, c = 1.0 / std::sqrt(9.0 * d);
    while (true) {
      double x, v;
      do {
        x = Normal();
        v = 1.0 + c * x;
      } while (v <= 0.0);
      v = v * v * v;
      const double u = Uniform();
      if (std::log(u) < 0.5 * x * x + d - d * v + d * std::log(v)) return d * v;
    }
  }

 private:
  uint64_t state_;
};

}  // namespace

std::string Distribution::Name() const {
  switch (kind) {
    case Kind::kGaussian: return "gaussian";
    case Kind::kLaplace: return "laplace";
    case Kind::kStudentT: return fmt::format("student-t:{}", nu);
  }
  return "?";
}

Distribution ParseDistribution(const std::string& text) {
  if (text == "gaussian") return {.kind = Distribution::Kind::kGaussian};
  if (text == "laplace") return {.kind = Distribution::Kind::kLaplace};
  const std::string prefix = "student-t:";
  if (text.starts_with(prefix)) {
    double nu = 0;
    const char* begin = text.data() + prefix.size();
    const char* end = text.data() + text.size();
    const auto [ptr, ec] = std::from_chars(begin, end, nu);
    if (ec == std::errc() && ptr == end && nu > 2.0) return {.kind = Distribution::Kind::kStudentT, .nu = nu};
  }
  Fail(ErrorCode::kInvalidArgument, "[--dist] got '{}', expected gaussian, laplace or student-t:NU with NU > 2", text);
}

std::vector<float> GenerateSamples(const Distribution& dist, int64_t n, uint64_t seed, const Outliers& outliers) {
  Random random(seed);
  std::vector<float> samples(static_cast<size_t>(n));
  for (float& s : samples) {
    double v = 0;
    switch (dist.kind) {
      case Distribution::Kind::kGaussian:
        v = random.Normal();
        break;
      case Distribution::Kind::kLaplace: {  // inverse CDF, b = 1/sqrt(2) for unit variance
        const double u = random.Uniform() - 0.5;
        v = -std::copysign(1.0, u) * std::log(1.0 - 2.0 * std::fabs(u)) / std::numbers::sqrt2;
        break;
      }
      case Distribution::Kind::kStudentT:  // Z / sqrt(chi2_nu / nu), scaled to unit variance
        v = random.Normal() / std::sqrt(2.0 * random.Gamma(dist.nu / 2.0) / dist.nu) *
            std::sqrt((dist.nu - 2.0) / dist.nu);
        break;
    }
    if (outliers.fraction > 0 && random.Uniform() < outliers.fraction) v *= outliers.scale;
    s = static_cast<float>(v);
  }
  return samples;
}

}  // namespace fp4forge
