// fp4forge inspect: what a checkpoint is, and whether the runtimes will load it right
// (FORMATS.md §5.7). Findings name the tensor or file and say how to fix it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace fp4forge {

class Checkpoint;

struct Finding {
  std::string where;  // tensor, module or file
  std::string what;   // what is wrong
  std::string fix;    // what to do
};

struct InspectReport {
  std::string dialect;  // e.g. "modelopt W4A16_NVFP4", "compressed-tensors nvfp4-pack-quantized", "unquantized BF16"
  bool validated = false;  // false: the dialect is recognised but its checks are not implemented
  std::vector<Finding> errors, warnings;
  int64_t num_params = 0;  // logical weights (a packed FP4 byte holds two)
  int64_t bytes = 0;       // weight bytes on disk
  int quantized_modules = 0;
  std::vector<std::string> serve_commands;

  bool valid() const { return errors.empty(); }
  double bits_per_weight() const { return num_params ? 8.0 * static_cast<double>(bytes) / num_params : 0.0; }
};

// Throws Error when the directory cannot be read as a checkpoint at all.
InspectReport InspectCheckpoint(const std::string& dir);
InspectReport InspectCheckpoint(const Checkpoint& checkpoint);

}  // namespace fp4forge
