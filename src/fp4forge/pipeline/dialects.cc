#include "fp4forge/pipeline/dialects.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fstream>

#include <fmt/format.h>

#include "fp4forge/base/error.h"
#include "fp4forge/base/interrupt.h"
#include "fp4forge/format/mxfp4.h"
#include "fp4forge/format/nvfp4.h"

namespace fp4forge {

namespace fs = std::filesystem;

namespace {

nlohmann::json Producer() { return {{"name", "fp4forge"}, {"version", FP4FORGE_VERSION}}; }

// compressed-tensors' QuantizationArgs of an FP4 tensor, as its serializer writes the NVFP4 and
// MXFP4 presets, with strategy written out (vLLM's NVFP4 detection needs "tensor_group").
nlohmann::json CompressedTensorsArgs(bool nvfp4, bool dynamic_local) {
  nlohmann::json args = {{"num_bits", 4},
                         {"type", "float"},
                         {"symmetric", true},
                         {"group_size", nvfp4 ? kNvfp4BlockSize : kMxfp4BlockSize},
                         {"strategy", nvfp4 ? "tensor_group" : "group"},
                         {"dynamic", false},
                         {"scale_dtype", nvfp4 ? "torch.float8_e4m3fn" : "torch.uint8"}};
  if (dynamic_local) {
    args["dynamic"] = "local";
    args["observer"] = "static_minmax";
  }
  return args;
}

}  // namespace

CheckpointDialect ParseCheckpointDialect(const std::string& name) {
  if (name == "modelopt") return CheckpointDialect::kModelOpt;
  if (name == "compressed-tensors") return CheckpointDialect::kCompressedTensors;
  Fail(ErrorCode::kInvalidArgument, "[dialect] got '{}', expected modelopt or compressed-tensors", name);
}

CheckpointScheme ParseCheckpointScheme(const std::string& name) {
  if (name == "nvfp4") return CheckpointScheme::kNvfp4;
  if (name == "mxfp4") return CheckpointScheme::kMxfp4;
  Fail(ErrorCode::kInvalidArgument, "[--scheme] got '{}', expected nvfp4 or mxfp4", name);
}

std::vector<std::string> NonEmptyExcludeList(std::vector<std::string> excluded) {
  if (excluded.empty()) excluded.push_back("model.embed_tokens");
  return excluded;
}

nlohmann::json ModelOptHfQuantConfig(const std::vector<std::string>& excluded, bool w4a4) {
  return {{"producer", Producer()},
          {"quantization",
           {{"quant_algo", w4a4 ? "NVFP4" : "W4A16_NVFP4"}, {"kv_cache_quant_algo", nullptr},
            {"group_size", kNvfp4BlockSize}, {"exclude_modules", excluded}}}};
}

nlohmann::json QuantizationConfig(CheckpointDialect dialect, CheckpointScheme scheme,
                                  const std::vector<std::string>& excluded, bool w4a4) {
  if (dialect == CheckpointDialect::kModelOpt) {
    nlohmann::json group = {{"weights", {{"dynamic", false}, {"num_bits", 4}, {"type", "float"}, {"group_size", kNvfp4BlockSize}}},
                            {"targets", {"Linear"}}};
    if (w4a4) group["input_activations"] = {{"dynamic", false}, {"num_bits", 4}, {"type", "float"}, {"group_size", kNvfp4BlockSize}};
    return {{"config_groups", {{"group_0", group}}},
            {"ignore", excluded},
            {"quant_algo", w4a4 ? "NVFP4" : "W4A16_NVFP4"},
            {"kv_cache_scheme", nullptr},
            {"producer", Producer()},
            {"quant_method", "modelopt"}};
  }
  const bool nvfp4 = scheme == CheckpointScheme::kNvfp4;
  const std::string format = nvfp4 ? "nvfp4-pack-quantized" : "mxfp4-pack-quantized";
  const nlohmann::json inputs = w4a4 ? CompressedTensorsArgs(nvfp4, true) : nlohmann::json();
  return {{"config_groups",
           {{"group_0",
             {{"targets", {"Linear"}},
              {"weights", CompressedTensorsArgs(nvfp4, false)},
              {"input_activations", inputs},
              {"output_activations", nullptr},
              {"format", format}}}}},
          {"format", format},
          {"global_compression_ratio", nullptr},
          {"ignore", excluded},
          {"kv_cache_scheme", nullptr},
          {"producer", Producer()},
          {"quant_method", "compressed-tensors"},
          {"quantization_status", "compressed"}};
}

namespace {

// A run killed by SIGKILL leaves its `.OUT.tmp-PID` behind. Later runs for the same OUT remove those
// whose process is gone (kill(pid, 0) says ESRCH), never one of a live process. A `.OUT.old-PID` (the
// previous OUT, moved aside for --force) of a dead process may be the only copy left: it is kept,
// and the user told how to restore it.
void RemoveLeftovers(const fs::path& out) {
  const std::string tmp_prefix = fmt::format(".{}.tmp-", out.filename().string());
  const std::string old_prefix = fmt::format(".{}.old-", out.filename().string());
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(out.parent_path(), error)) {
    const std::string name = entry.path().filename().string();
    const bool is_tmp = name.starts_with(tmp_prefix), is_old = name.starts_with(old_prefix);
    if (!is_tmp && !is_old) continue;
    const std::string digits = name.substr(tmp_prefix.size());  // both prefixes have the same length
    if (digits.empty() || digits.size() > 9 || !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) continue;
    const pid_t pid = static_cast<pid_t>(std::stol(digits));
    if (pid == ::getpid() || ::kill(pid, 0) == 0 || errno != ESRCH) continue;  // alive, or not ours to judge
    if (is_tmp) {
      std::error_code ignored;
      fs::remove_all(entry.path(), ignored);
      fmt::print(stderr, "fp4forge: removed {}, left by an earlier run (process {}) that was killed\n",
                 entry.path().string(), pid);
    } else {
      fmt::print(stderr, "fp4forge: note: {} holds the output that an earlier run (process {}) was replacing when it "
                 "was killed; `mv` it back to {} if that run never finished\n", entry.path().string(), pid, out.string());
    }
  }
}

}  // namespace

void BuildDirectory(const std::string& in_dir, const std::string& out_dir, bool force,
                    const std::function<void(const fs::path&)>& build) {
  fs::path out = fs::absolute(out_dir).lexically_normal();
  if (!out.has_filename()) out = out.parent_path();  // "out/" names the directory "out"
  const fs::path in = fs::weakly_canonical(in_dir), canonical_out = fs::weakly_canonical(out);
  // Every component of out_dir begins in_dir's path.
  if (std::mismatch(canonical_out.begin(), canonical_out.end(), in.begin(), in.end()).first == canonical_out.end()) {
    Fail(ErrorCode::kInvalidArgument, "'{}' is, or contains, the input checkpoint '{}'; writing it would delete the "
         "input. Choose another output directory", out_dir, in_dir);
  }
  if (fs::exists(out) && !fs::is_directory(out)) {
    Fail(ErrorCode::kInvalidArgument, "'{}' exists and is not a directory; choose another output directory", out.string());
  }
  if (fs::exists(out) && !force) {
    Fail(ErrorCode::kInvalidArgument, "'{}' exists; pass --force to replace it", out.string());
  }
  RemoveLeftovers(out);
  const fs::path tmp = out.parent_path() / fmt::format(".{}.tmp-{}", out.filename().string(), ::getpid());
  const fs::path old = out.parent_path() / fmt::format(".{}.old-{}", out.filename().string(), ::getpid());
  const InterruptScope interrupts;  // build polls it: Ctrl-C then removes tmp like any failure
  bool replaced = false;            // out moved to old (only with force, checked above)
  auto undo = [&] {
    std::error_code ignored;
    if (replaced) fs::rename(old, out, ignored);
    fs::remove_all(tmp, ignored);
  };
  try {
    fs::remove_all(tmp);
    fs::create_directories(tmp);
    build(tmp);
    ThrowIfInterrupted();
    if (fs::exists(out)) {
      fs::rename(out, old);
      replaced = true;
    }
    fs::rename(tmp, out);
  } catch (const fs::filesystem_error& e) {  // copying a file, creating or renaming a directory
    undo();
    Fail(ErrorCode::kIo, "cannot write '{}': {}; nothing was written", e.path1().string(), e.code().message());
  } catch (...) {
    undo();
    throw;
  }
  if (replaced) {
    std::error_code error;
    fs::remove_all(old, error);
    if (error) {
      Fail(ErrorCode::kIo, "'{}' is written, but its previous contents, moved to '{}', could not be deleted: {}",
           out.string(), old.string(), error.message());
    }
  }
}

void WriteJson(const fs::path& path, const nlohmann::json& json) {
  std::ofstream out(path);
  out << json.dump(2) << "\n";
  if (!out.flush()) Fail(ErrorCode::kIo, "cannot write '{}'", path.string());
}

}  // namespace fp4forge
