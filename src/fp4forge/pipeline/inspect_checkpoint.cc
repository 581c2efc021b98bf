#include "fp4forge/pipeline/inspect_checkpoint.h"

#include <cmath>
#include <algorithm>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>

#include <fnmatch.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "fp4forge/base/error.h"
#include "fp4forge/base/regex.h"
#include "fp4forge/codec/e4m3.h"
#include "fp4forge/codec/half.h"
#include "fp4forge/cpu/quantize.h"
#include "fp4forge/io/checkpoint.h"
#include "fp4forge/io/files.h"
#include "fp4forge/io/json.h"
#include "fp4forge/io/hf_names.h"

namespace fp4forge {

namespace {

namespace fs = std::filesystem;

// Dequantized weights beyond this make a module's global scale suspect: LLM weights stay far below
// it, while 2688/amax in place of amax/2688 makes weights of 2688²/amax, 1e5 and more.
constexpr double kSuspectWeight = 1e4;

std::string Shape(const std::vector<int64_t>& shape) { return fmt::format("[{}]", fmt::join(shape, ", ")); }

// The tensors of a block-scaled FP4 dialect, per quantized module <m>: <m>.<packed> U8 [N, K/2],
// <m>.weight_scale [N, K/block] and, for NVFP4, <m>.<global> and (W4A4) <m>.<input>.
struct Fp4Layout {
  std::string packed;       // "weight" (ModelOpt) or "weight_packed" (compressed-tensors)
  std::string global;       // "weight_scale_2" (S) or "weight_global_scale" (gs = 1/S); empty for MXFP4
  std::string input;        // "input_scale" or "input_global_scale"
  bool global_is_reciprocal;  // the stored scalar is gs = 2688/amax
  int block;                // 16 (NVFP4, F8_E4M3 scales) or 32 (MXFP4, U8 E8M0 scales)
  bool w4a4;                // activations quantized: every module needs <input>
};

// The modules a config declares unquantized (ModelOpt exclude_modules, compressed-tensors ignore),
// matched as their producers mean them (FORMATS.md §8 item 13): "re:" patterns from the start of
// the module name, others exactly or as wildcards (ModelOpt's `prefix*`).
class Exclusions {
 public:
  Exclusions(const nlohmann::json& list, const std::string& file, InspectReport& r) {
    if (!list.is_array()) return;
    for (const nlohmann::json& entry : list) {
      if (!entry.is_string()) continue;
      const std::string pattern = entry.get<std::string>();
      if (!pattern.starts_with("re:")) {
        globs_.push_back(pattern);
        continue;
      }
      try {
        regexes_.emplace_back(pattern.substr(3), file);
      } catch (const Error&) {
        r.errors.push_back({file, fmt::format("ignore pattern '{}' is not a valid regular expression", pattern),
                            "correct or remove it"});
      }
    }
  }

  bool Match(const std::string& module) const {
    return std::ranges::any_of(globs_, [&](const std::string& g) { return ::fnmatch(g.c_str(), module.c_str(), 0) == 0; }) ||
           std::ranges::any_of(regexes_, [&](const Regex& re) { return re.MatchesAtStart(module); });
  }

 private:
  std::vector<std::string> globs_;
  std::vector<Regex> regexes_;
};

// The quantization settings' JSON types, checked before anything reads them: a config written by
// hand (or by a buggy tool) must give findings, never a crash. Returns whether all are usable.
// The architecture keys every runtime reads from config.json, where present: of the JSON type and
// range the runtimes assume (transformers would fail on hidden_size "256" or num_hidden_layers -1).
void CheckModelConfigTypes(const nlohmann::json& config, InspectReport& r) {
  auto bad = [&](const std::string& key, const char* expected) {
    r.errors.push_back({"config.json", fmt::format("{} is {}, expected {}", key, config[key].dump(), expected), "correct it"});
  };
  for (const char* key : {"hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                          "num_key_value_heads", "vocab_size", "head_dim", "max_position_embeddings"}) {
    if (config.contains(key) && !config[key].is_null() &&
        !(config[key].is_number_integer() && config[key].get<int64_t>() > 0)) {
      bad(key, "a positive integer");
    }
  }
  for (const char* key : {"rms_norm_eps", "rope_theta"}) {
    if (config.contains(key) && !(config[key].is_number() && config[key].get<double>() > 0)) bad(key, "a positive number");
  }
  if (config.contains("model_type") && !config["model_type"].is_string()) bad("model_type", "a string");
  if (config.contains("tie_word_embeddings") && !config["tie_word_embeddings"].is_boolean()) {
    bad("tie_word_embeddings", "true or false");
  }
  if (config.contains("architectures") &&
      !(config["architectures"].is_array() &&
        std::ranges::all_of(config["architectures"], [](const nlohmann::json& e) { return e.is_string(); }))) {
    bad("architectures", "a list of strings");
  }
}

bool CheckConfigTypes(const nlohmann::json& qc, const nlohmann::json& hf_quant, InspectReport& r) {
  const size_t before = r.errors.size();
  auto expect = [&](const std::string& file, const std::string& key, const nlohmann::json& value, bool ok,
                    const char* expected) {
    if (!ok) r.errors.push_back({file, fmt::format("{} is {}, expected {}", key, value.dump(), expected), "correct it"});
    return ok;
  };
  auto strings = [](const nlohmann::json& v) {
    return v.is_array() && std::ranges::all_of(v, [](const nlohmann::json& e) { return e.is_string(); });
  };
  auto fields = [&](const std::string& file, const std::string& prefix, const nlohmann::json& object) {
    for (const char* key : {"quant_method", "format", "quant_algo", "quantization_status"}) {
      if (object.contains(key)) expect(file, prefix + key, object[key], object[key].is_string(), "a string");
    }
    for (const char* key : {"ignore", "exclude_modules"}) {
      if (object.contains(key)) expect(file, prefix + key, object[key], strings(object[key]), "a list of strings");
    }
  };
  if (expect("config.json", "quantization_config", qc, qc.is_object() || qc.is_null(), "an object")) {
    if (qc.is_object()) fields("config.json", "quantization_config.", qc);
    const nlohmann::json groups = qc.is_object() ? qc.value("config_groups", nlohmann::json::object()) : nlohmann::json::object();
    if (expect("config.json", "quantization_config.config_groups", groups, groups.is_object(), "an object")) {
      for (const auto& [name, group] : groups.items()) {
        const std::string key = "quantization_config.config_groups." + name;
        if (!expect("config.json", key, group, group.is_object(), "an object")) continue;
        for (const char* part : {"weights", "input_activations"}) {
          if (group.contains(part)) {
            expect("config.json", key + "." + part, group[part], group[part].is_object() || group[part].is_null(), "an object");
          }
        }
      }
    }
  }
  if (expect("hf_quant_config.json", "the file", hf_quant, hf_quant.is_object() || hf_quant.is_null(), "an object") &&
      hf_quant.contains("quantization") &&
      expect("hf_quant_config.json", "quantization", hf_quant["quantization"], hf_quant["quantization"].is_object(), "an object")) {
    fields("hf_quant_config.json", "quantization.", hf_quant["quantization"]);
  }
  return r.errors.size() == before;
}

void CheckConfigKeys(const nlohmann::json& quant, InspectReport& r) {
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
  if (quant.contains("exclude_modules") && quant["exclude_modules"].empty()) {  // a list: CheckConfigTypes
    r.warnings.push_back({"hf_quant_config.json", "exclude_modules is empty; older SGLang rejects it",
                          "list at least \"lm_head\""});
  }
}

// compressed-tensors (FORMATS.md §4b, §5.2, §5.7 item 1): every group as vLLM detects the scheme.
// Returns whether input activations are quantized from a stored scale (W4A4).
bool CheckCompressedTensorsConfig(const nlohmann::json& qc, bool nvfp4, InspectReport& r) {
  auto error = [&](std::string what, std::string fix) { r.errors.push_back({"config.json", std::move(what), std::move(fix)}); };
  if (qc.value("quantization_status", "") != "compressed") {
    error(fmt::format("quantization_status is {}; runtimes load only \"compressed\" checkpoints",
                      qc.contains("quantization_status") ? qc["quantization_status"].dump() : "missing"),
          "set quantization_status to \"compressed\"");
  }
  bool w4a4 = false;
  const nlohmann::json groups = qc.value("config_groups", nlohmann::json::object());
  if (groups.empty()) error("quantization_config.config_groups is empty or missing", "describe the weights' scheme");
  for (const auto& [name, group] : groups.items()) {
    const nlohmann::json w = group.value("weights", nlohmann::json::object());
    const nlohmann::json want = {{"num_bits", 4}, {"type", "float"}, {"symmetric", true}, {"group_size", nvfp4 ? 16 : 32},
                                 {"strategy", nvfp4 ? "tensor_group" : "group"}};
    for (const auto& [key, value] : want.items()) {
      if (!w.contains(key) || w[key] != value) {
        error(fmt::format("config_groups.{}.weights.{} is {}, expected {}; vLLM then does not detect {}", name, key,
                          w.contains(key) ? w[key].dump() : "missing", value.dump(), nvfp4 ? "NVFP4" : "MXFP4"),
              fmt::format("write \"{}\": {}", key, value.dump()));
      }
    }
    const nlohmann::json in = group.value("input_activations", nlohmann::json());
    w4a4 |= in.is_object() && in.value("dynamic", nlohmann::json(false)) != true;
  }
  return w4a4;
}

// One module's NVFP4 global scale, read both ways: the largest dequantized weight as the dialect
// declares it (6 · largest block scale · S) and as it would be with the scalar stored reciprocal.
struct GlobalScale {
  std::string name;
  float stored;
  double max_declared;
  double max_reciprocal;
};

// Whether a global scale is stored in the wrong direction (amax/2688 for 2688/amax or back). One
// module's bytes cannot tell: weights of amax A read as A or as 2688²/A are both valid NVFP4. What
// tells is the rest of the checkpoint, which a producer writes with one convention: a module whose
// weights would reach more than kSuspectWeight is an error only when the reciprocal reading puts
// them inside the range [min, max] of the largest weights of the other, unsuspect modules (or, when
// every module is suspect, of the unquantized weights: embeddings, norms, kept layers); and then
// every suspect module is, the producer having written them all one way. Otherwise, and when
// nothing else exists to compare with, a warning: the weights may be that large.
void CheckScaleDirections(const Checkpoint& c, const Fp4Layout& layout, const std::vector<GlobalScale>& globals,
                          InspectReport& r) {
  std::vector<double> reference;
  for (const GlobalScale& g : globals) {
    if (g.max_declared <= kSuspectWeight) reference.push_back(g.max_declared);
  }
  if (reference.size() == globals.size()) return;
  const char* kind = "other quantized modules";
  if (reference.empty()) {
    kind = "unquantized weights";
    for (const CheckpointTensor& ct : c.tensors()) {
      const SafetensorsTensor& t = *ct.tensor;
      if (!t.name.ends_with(".weight") || !t.FloatDType() || t.shape.empty()) continue;
      reference.push_back(cpu::TensorAmax(t.AsMatrix(), 0).amax);
      c.Release(t.name);
    }
  }
  const double lo = reference.empty() ? 0.0 : std::ranges::min(reference);
  const double hi = reference.empty() ? 0.0 : std::ranges::max(reference);
  const char* direction = layout.global_is_reciprocal ? "amax/2688, the ModelOpt direction" : "2688/amax, the compressed-tensors direction";
  const bool reciprocal = std::ranges::any_of(globals, [&](const GlobalScale& g) {
    return g.max_declared > kSuspectWeight && !reference.empty() && g.max_reciprocal >= lo && g.max_reciprocal <= hi;
  });
  for (const GlobalScale& g : globals) {
    if (g.max_declared <= kSuspectWeight) continue;
    if (reciprocal) {
      r.errors.push_back({g.name, fmt::format("dequantized weights reach {:.3g} where the {} reach {:.3g} at most: {} = {:.6g} looks like {}",
                                              g.max_declared, kind, hi, layout.global, g.stored, direction),
                          fmt::format("store its reciprocal {:.6g}", 1.0 / g.stored)});
    } else {
      r.warnings.push_back({g.name, fmt::format("dequantized weights reach {:.3g}{}; if the weights are not that large, {} = "
                                                "{:.6g} is stored as {}", g.max_declared,
                                                reference.empty() ? "" : fmt::format(" (the {} {:.3g} at most)", kind, hi),
                                                layout.global, g.stored, direction),
                            fmt::format("nothing if the original weights reach {:.3g}; else store the reciprocal {:.6g}",
                                        g.max_declared, 1.0 / g.stored)});
    }
  }
}

void CheckFp4Modules(const Checkpoint& c, const Fp4Layout& layout, const Exclusions& excluded, InspectReport& r) {
  const std::string packed_suffix = "." + layout.packed;
  const bool nvfp4 = !layout.global.empty();
  std::map<std::string, std::vector<std::pair<std::string, double>>> group_scales;  // fused group -> (module, S)
  std::map<std::string, std::vector<std::pair<std::string, double>>> group_inputs;  // fused group -> (module, input scale)
  std::map<std::string, std::set<std::string>> group_members, group_quantized;
  std::vector<GlobalScale> globals;
  for (const CheckpointTensor& ct : c.tensors()) {
    const SafetensorsTensor& t = *ct.tensor;
    // A block Linear kept in high precision must be declared excluded (§5.7 item 7), or the runtimes
    // build it as FP4 and fail on its weight.
    if (t.FloatDType() && ClassifyTensor(t.name, t.shape.size(), {}) == LinearVerdict::kQuantize) {
      const std::string module = FusedExpertsModule(t.name, t.shape.size()).value_or(ModuleName(t.name));
      if (!excluded.Match(module)) {
        r.errors.push_back({module, fmt::format("its weight is stored {} but the module is not listed as excluded; "
                                                "runtimes build it as {} and fail to load it", t.dtype, nvfp4 ? "NVFP4" : "MXFP4"),
                            "list it in exclude_modules / ignore (fp4forge quantize lists every module it keeps)"});
      }
    }
    if (t.name.ends_with(".weight") || t.name.ends_with(packed_suffix)) {
      const std::string module = t.name.substr(0, t.name.rfind('.'));
      if (auto key = FusedGroupKey(module + ".weight")) group_members[*key].insert(module);
    }
    // <m>.weight_scale, or ModelOpt's 3-D experts: <p>_weight_scale beside <p> and <p>_weight_scale_2.
    const bool batched = layout.packed == "weight" && t.name.ends_with("_weight_scale");
    if (!t.name.ends_with(".weight_scale") && !batched) continue;
    const std::string m = t.name.substr(0, t.name.size() - 13);  // both suffixes have 13 characters
    const std::string sep = batched ? "_" : ".";
    ++r.quantized_modules;
    if (excluded.Match(m)) {
      r.errors.push_back({m, "listed as excluded but stored quantized; runtimes build it unquantized and fail to load it",
                          "remove it from exclude_modules / ignore"});
    }
    const std::optional<std::string> group = FusedGroupKey(m + ".weight");
    if (group) group_quantized[*group].insert(m);
    auto need = [&](const std::string& name) -> const SafetensorsTensor* {
      const SafetensorsTensor* t = c.Find(name);
      if (!t) r.errors.push_back({m, fmt::format("{} is missing", name), "re-export the layer (an uncalibrated expert?)"});
      return t;
    };
    const SafetensorsTensor* w = need(batched ? m : m + packed_suffix);
    const SafetensorsTensor* g = nvfp4 ? need(m + sep + layout.global) : nullptr;
    if (!w || (nvfp4 && !g)) continue;
    const std::string scale_dtype = nvfp4 ? "F8_E4M3" : "U8";
    // 2-D: packed U8 [N, K/2], scales [N, K/block]; 3-D experts: U8 [E, K/2, N], scales [E, K/16, N].
    // Either way K is dimension 1 and every other dimension is shared.
    const size_t rank = batched ? 3 : 2;
    bool shapes_ok = w->dtype == "U8" && t.dtype == scale_dtype && w->shape.size() == rank && t.shape.size() == rank;
    for (size_t d = 0; shapes_ok && d < rank; ++d) {
      shapes_ok = d == 1 ? t.shape[d] * layout.block / 2 == w->shape[d] : t.shape[d] == w->shape[d];
    }
    if (!shapes_ok) {
      r.errors.push_back({m, fmt::format("{} {} {} with weight_scale {} {}; expected U8 {} and {} {}", batched ? m : layout.packed,
                                         w->dtype, Shape(w->shape), t.dtype, Shape(t.shape),
                                         batched ? "[E, K/2, N]" : "[N, K/2]", scale_dtype,
                                         batched ? "[E, K/16, N]" : fmt::format("[N, K/{}]", layout.block)),
                          fmt::format("re-export with block size {}", layout.block)});
      continue;
    }
    // Block scales: E4M3 no NaN (0x7F) and no sign bit; E8M0 no NaN (0xFF).
    const uint8_t first_invalid = nvfp4 ? 0x7F : 0xFF;
    int64_t bad = 0, first_bad = -1;
    uint8_t max_code = 0;
    for (int64_t i = 0; i < t.num_bytes; ++i) {
      const uint8_t b = t.data[i];
      if (b >= first_invalid) {
        if (bad++ == 0) first_bad = i;
      } else {
        max_code = std::max(max_code, b);
      }
    }
    c.Release(t.name);  // a checkpoint's scales can exceed memory: only the tensor at hand stays mapped
    if (bad) {
      const int64_t last = t.shape.back();
      const std::string where = batched ? fmt::format("expert {}, block {}, column {}", first_bad / (t.shape[1] * last),
                                                      first_bad / last % t.shape[1], first_bad % last)
                                        : fmt::format("row {}, block {}", first_bad / last, first_bad % last);
      r.errors.push_back({t.name, fmt::format("{} block scales are NaN{} (first at {})", bad, nvfp4 ? " or negative" : "", where),
                          "re-quantize the layer"});
    }
    if (!nvfp4) continue;
    const std::string global = m + sep + layout.global;
    const std::optional<float> stored = g->Scalar();
    if (!stored || !std::isfinite(*stored) || *stored <= 0) {
      r.errors.push_back({global, fmt::format("{} {} is not one finite positive scalar", g->dtype, Shape(g->shape)),
                          layout.global_is_reciprocal ? "store 2688/amax as F32 of shape [1]" : "store amax/2688 as F32 of shape []"});
      continue;
    }
    const double s = layout.global_is_reciprocal ? 1.0 / *stored : double{*stored};  // S: dequantized = e2m1 · scale · S
    globals.push_back({global, *stored, DecodeE4M3(max_code) * 6.0 * s, DecodeE4M3(max_code) * 6.0 / s});
    const std::string input = m + sep + layout.input;
    const SafetensorsTensor* in = c.Find(input);
    if (layout.w4a4 && !in) {
      r.errors.push_back({m, fmt::format("{} is missing but the config declares quantized activations (W4A4)", layout.input),
                          "calibrate activations or declare weight-only (W4A16)"});
    }
    if (!layout.w4a4 && in) {
      r.warnings.push_back({m, fmt::format("{} present but the config declares weight-only (W4A16)", layout.input),
                            "drop it or declare W4A4"});
    }
    if (layout.w4a4 && in) {
      // A zero or NaN activation scale (an expert no calibration token reached) loads silently and
      // divides by zero in the runtime (FORMATS.md §5.7 item 3).
      // 3-D experts: one F32 per expert, all judged; the group check compares the first.
      std::optional<float> value = in->Scalar();
      if (batched && in->dtype == "F32" && in->NumElements() > 0) {
        for (int64_t e = 0; e < in->NumElements(); ++e) {
          float v;
          std::memcpy(&v, in->data + 4 * e, 4);
          if (e == 0 || !std::isfinite(v) || v <= 0) value = v;
          if (!std::isfinite(v) || v <= 0) break;
        }
      }
      if (!value || !std::isfinite(*value) || *value <= 0) {
        r.errors.push_back({input, value ? fmt::format("is {}, expected a finite scale > 0", *value)
                                         : fmt::format("is {} {}, expected one F32 scalar", in->dtype, Shape(in->shape)),
                            "calibrate again so that every expert sees tokens (fp4forge quantize --calib runs all of them)"});
      } else if (group) {
        group_inputs[*group].push_back({m, *value});
      }
    }
    if (group) group_scales[*group].push_back({m, s});
  }
  CheckScaleDirections(c, layout, globals, r);
  // Fused layers must agree on a per-tensor scale (FORMATS.md §5.7 item 5).
  auto require_shared = [&](const std::map<std::string, std::vector<std::pair<std::string, double>>>& groups,
                            const std::string& name, const char* unit, const char* fix) {
    for (const auto& [key, values] : groups) {
      for (const auto& [module, value] : values) {
        if (value != values.front().second) {
          r.errors.push_back({key, fmt::format("fused layers have different {}: {} and {} differ ({:.9g} vs {:.9g}{}); "
                                               "TensorRT-LLM refuses them and vLLM/SGLang silently use the max",
                                               name, values.front().first, module, values.front().second, value, unit),
                              fix});
          break;
        }
      }
    }
  };
  require_shared(group_scales, layout.global, " as S", "quantize the group with its joint amax (fp4forge quantize does)");
  require_shared(group_inputs, layout.input, "", "share the max of the group's input amax (fp4forge quantize --calib does)");
  for (const auto& [key, quantized] : group_quantized) {
    if (quantized.size() != group_members[key].size()) {
      r.errors.push_back({key, "only some of these fused layers are quantized; vLLM loads a fused layer with one scheme",
                          "quantize or exclude all of them"});
    }
  }
}

// gpt-oss / Hugging Face MXFP4 (FORMATS.md §4c): <p>_blocks U8 [..., G, 16] beside <p>_scales U8 [..., G].
void CheckGptOssMxfp4(const Checkpoint& c, InspectReport& r) {
  for (const CheckpointTensor& ct : c.tensors()) {
    const std::string& name = ct.tensor->name;
    const SafetensorsTensor* blocks = ct.tensor;
    if (!name.ends_with("_blocks")) continue;
    const std::string base = name.substr(0, name.size() - 7);
    ++r.quantized_modules;
    const SafetensorsTensor* found = c.Find(base + "_scales");
    if (!found) {
      r.errors.push_back({base, base + "_scales is missing", "re-export the experts"});
      continue;
    }
    const SafetensorsTensor& scales = *found;
    std::vector<int64_t> expected(blocks->shape.begin(), blocks->shape.end() - (blocks->shape.empty() ? 0 : 1));
    if (blocks->dtype != "U8" || scales.dtype != "U8" || blocks->shape.size() < 2 || blocks->shape.back() != 16 ||
        scales.shape != expected) {
      r.errors.push_back({base, fmt::format("blocks {} {} with scales {} {}; expected U8 [..., G, 16] and U8 [..., G]",
                                            blocks->dtype, Shape(blocks->shape), scales.dtype, Shape(scales.shape)),
                          "re-export the experts"});
      continue;
    }
    const int64_t nan = std::count(scales.data, scales.data + scales.num_bytes, uint8_t{0xFF});
    c.Release(base + "_scales");
    if (nan) r.errors.push_back({base + "_scales", fmt::format("{} E8M0 scales are NaN (0xFF)", nan), "re-quantize"});
  }
}

// FP8 weights: every F8_E4M3 <m>.weight has a finite, positive <m>.weight_scale.
void CheckFp8(const Checkpoint& c, InspectReport& r) {
  for (const CheckpointTensor& ct : c.tensors()) {
    const std::string& name = ct.tensor->name;
    if (!name.ends_with(".weight") || ct.tensor->dtype != "F8_E4M3") continue;
    ++r.quantized_modules;
    const std::string m = ModuleName(name);
    const SafetensorsTensor* scale = c.Find(m + ".weight_scale");
    if (!scale) {
      r.errors.push_back({m, "weight_scale is missing for an F8_E4M3 weight", "re-export the layer"});
      continue;
    }
    const SafetensorsTensor& s = *scale;
    bool ok = s.dtype == "F32" || s.dtype == "BF16";
    for (int64_t i = 0; ok && i < s.NumElements(); ++i) {
      float v;
      if (s.dtype == "F32") {
        std::memcpy(&v, s.data + 4 * i, 4);
      } else {
        uint16_t bits;
        std::memcpy(&bits, s.data + 2 * i, 2);
        v = DecodeBF16(bits);
      }
      ok = std::isfinite(v) && v > 0;
    }
    if (!ok) r.errors.push_back({m + ".weight_scale", fmt::format("{} {}: expected finite positive F32 scales", s.dtype, Shape(s.shape)),
                                 "re-export the layer"});
  }
}

}  // namespace

namespace {

// Safetensors files in the directory that the checkpoint does not list (its index, or
// model.safetensors): runtimes that follow the index never read them, and one that holds a tensor
// of the checkpoint makes it ambiguous which copy a loader that globs *.safetensors takes.
void CheckUnlistedShards(const Checkpoint& c, InspectReport& r) {
  for (const std::string& file : c.other_files()) {
    if (!file.ends_with(".safetensors")) continue;
    const std::string path = (fs::path(c.dir()) / file).string();
    try {
      const SafetensorsFile extra(path);
      const auto twice = std::ranges::find_if(extra.tensors(), [&](const SafetensorsTensor& t) { return c.Find(t.name); });
      if (twice != extra.tensors().end()) {
        r.errors.push_back({file, fmt::format("holds tensor '{}', which the checkpoint's listed shards hold too; which "
                                              "copy a runtime reads depends on the runtime", twice->name),
                            "delete the stale file, or list it in the index instead of the other copy"});
      } else {
        r.warnings.push_back({file, "a safetensors file the checkpoint does not list; runtimes never read it",
                              "delete it, or add its tensors to model.safetensors.index.json"});
      }
    } catch (const Error& e) {
      r.warnings.push_back({file, fmt::format("an unlisted file that is not valid safetensors ({})", e.what()),
                            "delete it"});
    }
  }
}

// Packed 4-bit weights (U8 `weight` / `weight_packed` beside a `weight_scale`, or gpt-oss `_blocks`)
// under a config whose dialect checked no quantized module: the config names another algorithm, or
// none, and a runtime would read the codes as something else.
void CheckPackedWeightsAreDeclared(const Checkpoint& c, InspectReport& r) {
  if (r.quantized_modules > 0) return;
  for (const CheckpointTensor& ct : c.tensors()) {
    const std::string& name = ct.tensor->name;
    const bool packed = ct.tensor->dtype == "U8" &&
                        (name.ends_with("_blocks") || ((name.ends_with(".weight") || name.ends_with(".weight_packed")) &&
                                                       c.Find(ModuleName(name) + ".weight_scale")));
    if (packed) {
      r.errors.push_back({name, fmt::format("stored as packed 4-bit codes, but the config declares {}, under which no "
                                            "module is quantized", r.dialect),
                          "make quant_algo (hf_quant_config.json) or format (compressed-tensors) name the algorithm "
                          "the tensors hold: NVFP4, W4A16_NVFP4, nvfp4-pack-quantized, mxfp4-pack-quantized"});
      return;
    }
  }
}

}  // namespace

InspectReport InspectCheckpoint(const std::string& dir) { return InspectCheckpoint(Checkpoint(dir)); }

InspectReport InspectCheckpoint(const Checkpoint& c) {
  const std::string& dir = c.dir();
  InspectReport r;
  std::map<std::string, int64_t> bytes_by_dtype;
  for (const CheckpointTensor& ct : c.tensors()) {
    const SafetensorsTensor& t = *ct.tensor;
    r.bytes += t.num_bytes;
    bytes_by_dtype[t.dtype] += t.num_bytes;
    // A packed FP4 weight holds two weights per byte; scales are storage, not parameters.
    const bool packed = t.dtype == "U8" && (t.name.ends_with(".weight") || t.name.ends_with(".weight_packed") ||
                                            t.name.ends_with("_blocks"));
    const bool scale = t.name.ends_with("_scale") || t.name.ends_with("_scale_2") || t.name.ends_with("global_scale") ||
                       t.name.ends_with("_scales");
    if (!scale) r.num_params += packed ? 2 * t.NumElements() : t.NumElements();
  }
  CheckUnlistedShards(c, r);

  nlohmann::json hf_quant;
  if (PathExists(fs::path(dir) / "hf_quant_config.json")) {
    const fs::path path = fs::path(dir) / "hf_quant_config.json";
    hf_quant = ParseUntrustedJson(ReadRegularFile(path, "[inspect]"), "[inspect] '" + path.string() + "'");
  }
  CheckModelConfigTypes(c.config(), r);
  const nlohmann::json qc = c.config().value("quantization_config", nlohmann::json::object());
  if (!CheckConfigTypes(qc, hf_quant, r)) {
    r.dialect = "malformed quantization config";
    return r;
  }
  const std::string method = qc.value("quant_method", hf_quant.contains("quantization") ? "modelopt" : "");
  if (method.starts_with("modelopt")) {
    const nlohmann::json quant = hf_quant.is_object() ? hf_quant.value("quantization", nlohmann::json::object())
                                                      : nlohmann::json::object();  // absent: reported below
    const std::string algo = quant.value("quant_algo", qc.value("quant_algo", "?"));
    r.dialect = "modelopt " + algo;
    if (hf_quant.is_null()) {
      r.errors.push_back({"hf_quant_config.json", "missing; vLLM and TensorRT-LLM read the ModelOpt config from it",
                          "write it (fp4forge quantize does)"});
    }
    if (algo == "NVFP4" || algo == "W4A16_NVFP4") {
      CheckConfigKeys(quant, r);
      const Exclusions excluded(quant.value("exclude_modules", qc.value("ignore", nlohmann::json())), "hf_quant_config.json", r);
      CheckFp4Modules(c, {"weight", "weight_scale_2", "input_scale", false, 16, algo == "NVFP4"}, excluded, r);
      r.validated = true;
      r.serve_commands.push_back(fmt::format("vllm serve {} --quantization modelopt_fp4", dir));
      if (algo == "NVFP4") {
        r.serve_commands.push_back(fmt::format("python -m sglang.launch_server --model-path {} --quantization modelopt_fp4", dir));
      }
      r.serve_commands.push_back(fmt::format("trtllm-serve {}", dir));
    } else if (algo.starts_with("FP8")) {
      CheckFp8(c, r);
      r.validated = true;
      r.serve_commands.push_back(fmt::format("vllm serve {} --quantization modelopt", dir));
    }
  } else if (method == "compressed-tensors") {
    const std::string format = qc.value("format", "?");
    r.dialect = "compressed-tensors " + format;
    const bool nvfp4 = format == "nvfp4-pack-quantized";
    if (nvfp4 || format == "mxfp4-pack-quantized") {
      const bool w4a4 = CheckCompressedTensorsConfig(qc, nvfp4, r);
      const Exclusions excluded(qc.value("ignore", nlohmann::json()), "config.json", r);
      if (nvfp4) {
        CheckFp4Modules(c, {"weight_packed", "weight_global_scale", "input_global_scale", true, 16, w4a4}, excluded, r);
      } else {
        CheckFp4Modules(c, {"weight_packed", "", "", false, 32, false}, excluded, r);
      }
      r.validated = true;
      r.serve_commands.push_back(fmt::format("vllm serve {}", dir));
    } else if (format == "float-quantized" || format == "naive-quantized") {
      CheckFp8(c, r);
      r.validated = true;
      r.serve_commands.push_back(fmt::format("vllm serve {}", dir));
    }
  } else if (method == "mxfp4") {
    r.dialect = "gpt-oss mxfp4";
    CheckGptOssMxfp4(c, r);
    r.validated = true;
    r.serve_commands.push_back(fmt::format("vllm serve {}", dir));
  } else if (!method.empty()) {
    r.dialect = method;
  }
  if (!method.empty() && !r.validated) {
    r.warnings.push_back({dir, fmt::format("the checks for '{}' are not implemented: fp4forge validates ModelOpt NVFP4 / "
                                           "W4A16_NVFP4 / FP8, compressed-tensors NVFP4 / MXFP4 / FP8 and gpt-oss MXFP4",
                                           r.dialect), "none; nothing was checked"});
  }
  if (method.empty()) {
    const auto dominant = std::max_element(bytes_by_dtype.begin(), bytes_by_dtype.end(),
                                           [](const auto& a, const auto& b) { return a.second < b.second; });
    r.dialect = "unquantized " + (dominant == bytes_by_dtype.end() ? std::string("?") : dominant->first);
    r.validated = true;
    r.serve_commands.push_back(fmt::format("vllm serve {}", dir));
  }
  CheckPackedWeightsAreDeclared(c, r);
  return r;
}

}  // namespace fp4forge
