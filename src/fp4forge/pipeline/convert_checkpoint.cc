#include "fp4forge/pipeline/convert_checkpoint.h"

#include <bit>
#include <filesystem>
#include <map>
#include <set>

#include <fmt/format.h>

#include "fp4forge/base/error.h"
#include "fp4forge/base/interrupt.h"
#include "fp4forge/base/regex.h"
#include "fp4forge/format/nvfp4.h"
#include "fp4forge/io/checkpoint.h"
#include "fp4forge/io/files.h"
#include "fp4forge/io/json.h"
#include "fp4forge/io/hf_names.h"
#include "fp4forge/io/safetensors_writer.h"
#include "fp4forge/pipeline/inspect_checkpoint.h"

namespace fp4forge {

namespace {

namespace fs = std::filesystem;

// The names one dialect gives the tensors of a quantized module (FORMATS.md §3.5).
struct Names {
  const char* packed;
  const char* global;
  const char* input;
  std::vector<int64_t> scalar_shape;
  uint8_t zero_block_scale;  // what the dialect's producer writes for a block of zeros
};
const Names kModelOpt{"weight", "weight_scale_2", "input_scale", {}, 0x38};                     // 1.0
const Names kCompressedTensors{"weight_packed", "weight_global_scale", "input_global_scale", {1}, 0x20};  // 0.125
const Names& NamesOf(CheckpointDialect d) { return d == CheckpointDialect::kModelOpt ? kModelOpt : kCompressedTensors; }

// A glob of ModelOpt's exclude_modules ("model.layers.*.mlp.gate") as a compressed-tensors ignore
// entry: names without wildcards stay names; globs become "re:" regexes matching the whole name.
std::string GlobToIgnore(const std::string& glob) {
  if (glob.find_first_of("*?") == std::string::npos) return glob;
  std::string regex = "re:";
  for (char c : glob) {
    if (c == '*') {
      regex += ".*";
    } else if (c == '?') {
      regex += '.';
    } else {
      if (std::string_view(".^$+()[]{}|\\").find(c) != std::string_view::npos) regex += '\\';
      regex += c;
    }
  }
  return regex + "$";
}

// compressed-tensors' ignore entries as ModelOpt exclude_modules: names stay; each "re:" regex
// (matched from the start of the name, as Python's re.match) becomes the modules it matches.
std::vector<std::string> IgnoreToExclude(const std::vector<std::string>& ignore, const std::set<std::string>& modules) {
  std::set<std::string> out;
  for (const std::string& entry : ignore) {
    if (!entry.starts_with("re:")) {
      out.insert(entry);
      continue;
    }
    const Regex regex(entry.substr(3), "[convert] compressed-tensors ignore entry " + entry);
    for (const std::string& m : modules) {
      if (regex.MatchesAtStart(m)) out.insert(m);
    }
  }
  return {out.begin(), out.end()};
}

}  // namespace

ConvertReport ConvertCheckpoint(const std::string& in_dir, const std::string& out_dir, CheckpointDialect to, bool force) {
  const Checkpoint in(in_dir);
  const InspectReport inspected = InspectCheckpoint(in);
  if (!inspected.valid()) {
    std::string findings;
    for (const Finding& f : inspected.errors) findings += fmt::format("\n  {}: {} (fix: {})", f.where, f.what, f.fix);
    Fail(ErrorCode::kInvalidData, "[convert] '{}' ({}) is not valid; fix it first:{}", in_dir, inspected.dialect,
         findings);
  }
  CheckpointDialect from;
  if (inspected.dialect == "modelopt NVFP4" || inspected.dialect == "modelopt W4A16_NVFP4") {
    from = CheckpointDialect::kModelOpt;
  } else if (inspected.dialect == "compressed-tensors nvfp4-pack-quantized") {
    from = CheckpointDialect::kCompressedTensors;
  } else {
    Fail(ErrorCode::kUnsupported, "[convert] '{}' is {}; convert handles NVFP4 in the modelopt and compressed-tensors "
         "dialects", in_dir, inspected.dialect);
  }
  if (from == to) Fail(ErrorCode::kUnsupported, "[convert] '{}' is already {}", in_dir, inspected.dialect);
  const Names& src = NamesOf(from);
  const Names& dst = NamesOf(to);

  ConvertReport report;
  report.from = inspected.dialect;
  BuildDirectory(in_dir, out_dir, force, [&](const fs::path& tmp) {
    std::set<std::string> modules, quantized;
    for (const CheckpointTensor& t : in.tensors()) {
      modules.insert(t.tensor->name.substr(0, t.tensor->name.rfind('.')));
      if (t.tensor->name.ends_with(std::string(".") + src.global)) {
        quantized.insert(t.tensor->name.substr(0, t.tensor->name.rfind('.')));
      }
    }
    report.modules = static_cast<int>(quantized.size());
    bool w4a4 = false;  // activation scales present: W4A4
    for (const std::string& m : quantized) w4a4 |= in.Find(m + "." + src.input) != nullptr;

    // Each tensor's name, dtype and shape in the target dialect.
    auto convert_spec = [&](const SafetensorsTensor& t) -> TensorSpec {
      const size_t dot = t.name.rfind('.');
      const std::string m = t.name.substr(0, dot), leaf = t.name.substr(dot + 1);
      if (leaf.ends_with("k_scale") || leaf.ends_with("v_scale")) {
        Fail(ErrorCode::kUnsupported, "[convert] '{}' has KV-cache scales ({}); converting them is not supported yet",
             in_dir, t.name);
      }
      if (leaf.ends_with("_weight_scale")) {  // ModelOpt's 3-D experts: <p>_weight_scale [E, K/16, N]
        Fail(ErrorCode::kUnsupported, "[convert] '{}' has 3-D fused experts ({}); compressed-tensors has no confirmed "
             "layout for them, so convert refuses rather than guess", in_dir, t.name);
      }
      if (!quantized.contains(m)) return {t.name, t.dtype, t.shape};
      if (leaf == src.packed) return {m + "." + dst.packed, t.dtype, t.shape};
      if (leaf == src.global) return {m + "." + dst.global, "F32", dst.scalar_shape};
      if (leaf == src.input) return {m + "." + dst.input, "F32", dst.scalar_shape};
      return {t.name, t.dtype, t.shape};
    };

    std::map<std::string, std::vector<const SafetensorsTensor*>> files;  // shard layout kept
    for (const CheckpointTensor& t : in.tensors()) files[t.file].push_back(t.tensor);
    nlohmann::json weight_map = nlohmann::json::object();
    int64_t total_size = 0;
    for (const auto& [file, tensors] : files) {
      std::vector<TensorSpec> specs;
      for (const SafetensorsTensor* t : tensors) {
        specs.push_back(convert_spec(*t));
        weight_map[specs.back().name] = file;
        total_size += specs.back().NumBytes();
      }
      SafetensorsWriter writer((tmp / file).string(), specs);
      for (size_t i = 0; i < tensors.size(); ++i) {
        const SafetensorsTensor& t = *tensors[i];
        ThrowIfInterrupted();
        const std::string m = t.name.substr(0, t.name.rfind('.')), leaf = t.name.substr(t.name.rfind('.') + 1);
        if (quantized.contains(m) && (leaf == src.global || leaf == src.input)) {
          const float value = *t.Scalar();  // validated finite and positive (global); input scales too
          const float reciprocal = 1.0f / value;
          report.inexact_reciprocals += 1.0f / reciprocal != value;
          writer.Write(specs[i].name, {reinterpret_cast<const uint8_t*>(&reciprocal), sizeof(reciprocal)});
        } else if (quantized.contains(m) && leaf == "weight_scale") {
          // A block whose 16 codes are all +-0 decodes to zero whatever its scale: its scale byte
          // follows the target's convention. Blocks with other scales are kept as they are.
          const std::string packed_name = m + "." + src.packed;
          const SafetensorsTensor& packed = *in.Find(packed_name);  // validated present
          std::vector<uint8_t> scales(t.data, t.data + t.num_bytes);
          for (size_t b = 0; b < scales.size(); ++b) {
            const uint8_t* codes = packed.data + b * (kNvfp4BlockSize / 2);
            bool zero = scales[b] == src.zero_block_scale;
            for (int k = 0; zero && k < kNvfp4BlockSize / 2; ++k) zero = (codes[k] & 0x77) == 0;
            if (zero) {
              scales[b] = dst.zero_block_scale;
              ++report.zero_blocks;
            }
          }
          writer.Write(specs[i].name, scales);
          in.Release(packed_name);
        } else {
          writer.Write(specs[i].name, {t.data, static_cast<size_t>(t.num_bytes)});
        }
        in.Release(t.name);  // streaming: only the tensor at hand stays mapped
      }
      writer.Finish();
    }
    if (files.size() > 1) {
      WriteJson(tmp / "model.safetensors.index.json", {{"metadata", {{"total_size", total_size}}}, {"weight_map", weight_map}});
    }

    // Configs: the excluded modules carried over, in the target's notation.
    nlohmann::json config = in.config();
    const nlohmann::json qc = config.value("quantization_config", nlohmann::json::object());
    std::vector<std::string> excluded;
    if (from == CheckpointDialect::kModelOpt) {
      nlohmann::json hf = nlohmann::json::object();
      const fs::path hf_path = fs::path(in_dir) / "hf_quant_config.json";
      if (PathExists(hf_path)) {
        hf = ParseUntrustedJson(ReadRegularFile(hf_path, "[convert]"), "[convert] '" + hf_path.string() + "'");
        if (!hf.is_object()) Fail(ErrorCode::kInvalidData, "[convert] '{}' is not a JSON object", hf_path.string());
      }
      const nlohmann::json list = hf.value("quantization", nlohmann::json::object())
                                      .value("exclude_modules", qc.value("ignore", nlohmann::json::array()));
      for (const auto& glob : list) excluded.push_back(GlobToIgnore(glob.get<std::string>()));
    } else {
      excluded = IgnoreToExclude(qc.value("ignore", std::vector<std::string>{}), modules);
    }
    excluded = NonEmptyExcludeList(std::move(excluded));
    config["quantization_config"] = QuantizationConfig(to, CheckpointScheme::kNvfp4, excluded, w4a4);
    WriteJson(tmp / "config.json", config);
    if (to == CheckpointDialect::kModelOpt) WriteJson(tmp / "hf_quant_config.json", ModelOptHfQuantConfig(excluded, w4a4));
    for (const std::string& name : in.other_files()) {
      if (name == "config.json" || name == "hf_quant_config.json") continue;
      fs::copy_file(fs::path(in_dir) / name, tmp / name);
    }
  });
  return report;
}

}  // namespace fp4forge
