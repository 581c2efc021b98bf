#include "fp4forge/cpu/target.h"

#include "hwy/targets.h"

namespace fp4forge::cpu {

// This file is compiled with the same flags as the kernels, so HWY_TARGETS (which
// SupportedAndGeneratedTargets reads) is the set the kernels were compiled for.
std::vector<std::string> SupportedTargetNames() {
  std::vector<std::string> names;
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) names.emplace_back(hwy::TargetName(target));
  return names;
}

std::string DispatchedTargetName() { return SupportedTargetNames().front(); }

}  // namespace fp4forge::cpu
