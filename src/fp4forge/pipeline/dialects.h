// The checkpoint dialects fp4forge writes, and what each says in its configs (FORMATS.md §4a, §4b,
// §5.1-5.3). Shared by quantize and convert, so that both write the same configs.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace fp4forge {

enum class CheckpointDialect {
  kModelOpt,           // vLLM/SGLang --quantization modelopt_fp4, TensorRT-LLM
  kCompressedTensors,  // vLLM compressed-tensors: nvfp4-pack-quantized, mxfp4-pack-quantized
};
enum class CheckpointScheme { kNvfp4, kMxfp4 };  // MXFP4: compressed-tensors only

CheckpointDialect ParseCheckpointDialect(const std::string& name);  // "modelopt", "compressed-tensors"
CheckpointScheme ParseCheckpointScheme(const std::string& name);    // "nvfp4", "mxfp4"

// The exclude list to write for these excluded modules: older SGLang rejects an empty one (FORMATS.md
// §5.3), so when nothing is excluded it names the embedding, which is never a quantized Linear (naming
// lm_head would be wrong where lm_head is quantized: inspect and runtimes would skip it).
std::vector<std::string> NonEmptyExcludeList(std::vector<std::string> excluded);

// hf_quant_config.json of a ModelOpt NVFP4 checkpoint: vLLM requires the keys group_size,
// kv_cache_quant_algo and exclude_modules; older SGLang rejects an empty exclude_modules.
nlohmann::json ModelOptHfQuantConfig(const std::vector<std::string>& excluded, bool w4a4);

// config.json "quantization_config" of a dialect. `excluded`: Linear modules left in high
// precision (ModelOpt exclude_modules / ignore; compressed-tensors ignore: names or "re:" regexes).
// w4a4: activations quantized with a calibrated global scale (ModelOpt NVFP4, compressed-tensors
// NVFP4 with dynamic "local" input activations); else weight-only.
nlohmann::json QuantizationConfig(CheckpointDialect dialect, CheckpointScheme scheme,
                                  const std::vector<std::string>& excluded, bool w4a4);

// Builds the directory `out_dir` from the checkpoint `in_dir` through build(tmp), where tmp is a
// fresh directory beside out_dir, then renames tmp to out_dir: a failure (thrown by build) leaves no
// output and no tmp. Refused before build runs (Error kInvalidArgument): an out_dir that is in_dir or
// contains it (replacing it would delete the input), and an existing out_dir unless `force`; with
// `force` it is moved aside, replaced, and only then deleted, so a failure never costs the old one.
void BuildDirectory(const std::string& in_dir, const std::string& out_dir, bool force,
                    const std::function<void(const std::filesystem::path&)>& build);

void WriteJson(const std::filesystem::path& path, const nlohmann::json& json);  // throws Error(kIo)

}  // namespace fp4forge
