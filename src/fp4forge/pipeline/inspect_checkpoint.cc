#include "fp4forge/pipeline/inspect_checkpoint.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "fp4forge/base/error.h"
#include "fp4forge/codec/e4m3.h"
#include "fp4forge/codec/half.h"
#include "fp4forge/io/checkpoint.h"
#include "fp4forge/io/hf_names.h"

namespace fp4forge {

namespace {

namespace fs = std::filesystem;

// A dequantized weight larger than this is taken as a scale stored in the wrong direction: LLM
// weights stay far below it, while 2688/amax in place of amax/2688 makes weights of 1e5 and more.
constexpr double kImplausibleWeight = 1e4;

std::optional<double> Scalar(const SafetensorsTensor& t) {
  if (t.NumElements() != 1) return std::nullopt;
  if (t.dtype == "F32") {
    float v;
    std::memcpy(&v, t.data, 4);
    return v;
  }
  if (t.dtype == "BF16") {
    uint16_t v;
    std::memcpy(&v, t.data, 2);
    return DecodeBF16(v);
  }
  return std::nullopt;
}

std::string Shape(const std::vector<int64_t>& shape) { return fmt::format("[{}]", fmt::join(shape, ", ")); }

void CheckModelOptNvfp4(const Checkpoint& c, const nlohmann::json& quant, InspectReport& r) {
  // Config keys vLLM requires in hf_quant_config.json; SGLang (older) rejects an empty exclude list.
  for (const char* key : {"quant_algo", "kv_cache_quant_algo", "group_size", "exclude_modules"}) {
    if (!quant.contains(key)) {
      r.errors.push_back({"hf_quant_config.json", fmt::format("quantization.{} is missing; vLLM refuses to load", key),
                          fmt::format("add \"{}\" (null is allowed)", key)});
    }
  }
  if (quant.contains("group_size") && quant["group_size"] != 16) {
    r.errors.push_back({"hf_quant_config.json", fmt::format("group_size {}; NVFP4 runtimes accept only 16", quant["group_size"].dump()),
                        "set group_size to 16"});
  }
  if (quant.contains("exclude_modules") && (!quant["exclude_modules"].is_array() || quant["exclude_modules"].empty())) {
    r.warnings.push_back({"hf_quant_config.json", "exclude_modules is empty or not a list; older SGLang rejects it",
                          "list at least \"lm_head\""});
  }
  const bool w4a4 = quant.value("quant_algo", "") == "NVFP4";

  std::map<std::string, const SafetensorsTensor*> by_name;
  for (const CheckpointTensor& t : c.tensors()) by_name[t.tensor->name] = t.tensor;
  std::map<std::string, std::vector<std::pair<std::string, double>>> group_scales;  // fused group -> (module, S)
  std::map<std::string, std::set<std::string>> group_members, group_quantized;
  for (const CheckpointTensor& ct : c.tensors()) {
    const SafetensorsTensor& t = *ct.tensor;
    if (auto key = FusedGroupKey(t.name); key && t.name.ends_with(".weight")) group_members[*key].insert(ModuleName(t.name));
    if (!t.name.ends_with(".weight_scale")) continue;
    const std::string m = t.name.substr(0, t.name.size() - 13);
    ++r.quantized_modules;
    auto need = [&](const std::string& name) -> const SafetensorsTensor* {
      const auto it = by_name.find(name);
      if (it == by_name.end()) {
        r.errors.push_back({m, fmt::format("{} is missing", name), "re-export the layer (an uncalibrated expert?)"});
        return nullptr;
      }
      return it->second;
    };
    const SafetensorsTensor* w = need(m + ".weight");
    const SafetensorsTensor* s2 = need(m + ".weight_scale_2");
    if (!w || !s2) continue;
    if (w->dtype != "U8" || w->shape.size() != 2 || t.dtype != "F8_E4M3" || t.shape.size() != 2 ||
        t.shape[0] != w->shape[0] || t.shape[1] * 8 != w->shape[1]) {
      r.errors.push_back({m, fmt::format("weight {} {} with weight_scale {} {}; expected U8 [N, K/2] and F8_E4M3 [N, K/16]",
                                         w->dtype, Shape(w->shape), t.dtype, Shape(t.shape)),
                          "re-export with block size 16"});
      continue;
    }
    const std::optional<double> s = Scalar(*s2);
    if (!s || !std::isfinite(*s) || *s <= 0) {
      r.errors.push_back({m + ".weight_scale_2", fmt::format("{} {} is not one finite positive scalar", s2->dtype, Shape(s2->shape)),
                          "store amax/2688 as F32 of shape []"});
      continue;
    }
    // Block scales: no NaN (0x7F), no sign bit.
    int64_t bad = 0, first_bad = -1;
    uint8_t max_code = 0;
    for (int64_t i = 0; i < t.num_bytes; ++i) {
      const uint8_t b = t.data[i];
      if (b >= 0x7F) {
        if (bad++ == 0) first_bad = i;
      } else {
        max_code = std::max(max_code, b);
      }
    }
    if (bad) {
      r.errors.push_back({m + ".weight_scale", fmt::format("{} block scales are NaN or negative (first at row {}, block {})", bad,
                                                           first_bad / t.shape[1], first_bad % t.shape[1]),
                          "re-quantize the layer"});
    }
    const double implied_max = DecodeE4M3(max_code) * 6.0 * *s;
    if (implied_max > kImplausibleWeight) {
      r.errors.push_back({m + ".weight_scale_2",
                          fmt::format("dequantized weights reach {:.3g}: weight_scale_2 = {:.6g} looks like 2688/amax, the "
                                      "compressed-tensors direction", implied_max, *s),
                          fmt::format("store its reciprocal {:.6g} (ModelOpt: amax/2688)", 1.0 / *s)});
    }
    if (w4a4 && !by_name.contains(m + ".input_scale")) {
      r.errors.push_back({m, "input_scale is missing but quant_algo is NVFP4 (W4A4)", "calibrate activations or use W4A16_NVFP4"});
    }
    if (!w4a4 && by_name.contains(m + ".input_scale")) {
      r.warnings.push_back({m, "input_scale present but quant_algo is W4A16_NVFP4", "drop it or declare NVFP4"});
    }
    if (auto key = FusedGroupKey(m + ".weight")) {
      group_scales[*key].push_back({m, *s});
      group_quantized[*key].insert(m);
    }
  }
  for (const auto& [key, scales] : group_scales) {
    for (const auto& [module, s] : scales) {
      if (s != scales.front().second) {
        r.errors.push_back({key, fmt::format("fused layers have different weight_scale_2: {} = {:.9g}, {} = {:.9g}; TensorRT-LLM "
                                             "refuses them and vLLM/SGLang silently use the max", scales.front().first,
                                             scales.front().second, module, s),
                            "quantize the group with its joint amax (fp4forge quantize does)"});
        break;
      }
    }
  }
  for (const auto& [key, quantized] : group_quantized) {
    if (quantized.size() != group_members[key].size()) {
      r.errors.push_back({key, "only some of these fused layers are quantized; vLLM loads a fused layer with one scheme",
                          "quantize or exclude all of them"});
    }
  }
}

}  // namespace

InspectReport InspectCheckpoint(const std::string& dir) {
  const Checkpoint c(dir);
  InspectReport r;
  std::map<std::string, int64_t> bytes_by_dtype;
  for (const CheckpointTensor& ct : c.tensors()) {
    const SafetensorsTensor& t = *ct.tensor;
    r.bytes += t.num_bytes;
    bytes_by_dtype[t.dtype] += t.num_bytes;
    // A packed FP4 weight holds two weights per byte; scales are storage, not parameters.
    const bool packed = t.dtype == "U8" && (t.name.ends_with(".weight") || t.name.ends_with(".weight_packed"));
    const bool scale = t.name.ends_with("_scale") || t.name.ends_with("_scale_2") || t.name.ends_with("global_scale");
    if (!scale) r.num_params += packed ? 2 * t.NumElements() : t.NumElements();
  }

  nlohmann::json hf_quant;
  if (fs::exists(fs::path(dir) / "hf_quant_config.json")) {
    hf_quant = nlohmann::json::parse(std::ifstream(fs::path(dir) / "hf_quant_config.json"), nullptr, false);
    if (hf_quant.is_discarded()) Fail(ErrorCode::kInvalidData, "[inspect] '{}/hf_quant_config.json' is not JSON", dir);
  }
  const nlohmann::json qc = c.config().value("quantization_config", nlohmann::json::object());
  const std::string method = qc.value("quant_method", hf_quant.contains("quantization") ? "modelopt" : "");
  if (method.starts_with("modelopt")) {
    const nlohmann::json quant = hf_quant.value("quantization", nlohmann::json::object());
    const std::string algo = quant.value("quant_algo", qc.value("quant_algo", "?"));
    r.dialect = "modelopt " + algo;
    if (hf_quant.is_null()) {
      r.errors.push_back({"hf_quant_config.json", "missing; vLLM and TensorRT-LLM read the ModelOpt config from it",
                          "write it (fp4forge quantize does)"});
    }
    if (algo == "NVFP4" || algo == "W4A16_NVFP4") {
      CheckModelOptNvfp4(c, quant, r);
      r.validated = true;
      r.serve_commands.push_back(fmt::format("vllm serve {} --quantization modelopt_fp4", dir));
      if (algo == "NVFP4") {
        r.serve_commands.push_back(fmt::format("python -m sglang.launch_server --model-path {} --quantization modelopt_fp4", dir));
      }
      r.serve_commands.push_back(fmt::format("trtllm-serve {}", dir));
    }
  } else if (method == "compressed-tensors") {
    r.dialect = "compressed-tensors " + qc.value("format", "?");
  } else if (method == "mxfp4") {
    r.dialect = "gpt-oss mxfp4";
  } else if (!method.empty()) {
    r.dialect = method;
  }
  if (!method.empty() && !r.validated) {
    r.warnings.push_back({dir, fmt::format("the checks for '{}' are not implemented yet: only ModelOpt NVFP4 / W4A16_NVFP4 "
                                           "checkpoints are validated", r.dialect), "none; nothing was checked"});
  }
  if (method.empty()) {
    const auto dominant = std::max_element(bytes_by_dtype.begin(), bytes_by_dtype.end(),
                                           [](const auto& a, const auto& b) { return a.second < b.second; });
    r.dialect = "unquantized " + (dominant == bytes_by_dtype.end() ? std::string("?") : dominant->first);
    r.validated = true;
    r.serve_commands.push_back(fmt::format("vllm serve {}", dir));
  }
  return r;
}

}  // namespace fp4forge
