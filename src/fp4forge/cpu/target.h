// Which Highway target this CPU runs: what benchmarks print beside their figures.
#pragma once

#include <string>
#include <vector>

namespace fp4forge::cpu {

// The target runtime dispatch selects on this CPU ("AVX3", "AVX2", ...): the best one that is both
// compiled in and supported.
std::string DispatchedTargetName();

// Every compiled target this CPU supports, best first: the ones tests run the kernels on.
std::vector<std::string> SupportedTargetNames();

}  // namespace fp4forge::cpu
