#include "fp4forge/io/hf_names.h"

#include <array>
#include <string_view>

namespace fp4forge {

namespace {

bool Contains(const std::string& s, std::string_view part) { return s.find(part) != std::string::npos; }
bool EndsWith(const std::string& s, std::string_view suffix) { return s.ends_with(suffix); }

// Leaf module names of the Linear layers inside transformer blocks (Llama, Mistral, Qwen, Mixtral,
// DeepSeek MLA, Phi-3 fused, GPT-style).
constexpr std::array<std::string_view, 21> kLinearLeaves = {
    "q_proj", "k_proj", "v_proj", "o_proj", "qkv_proj", "q_a_proj", "q_b_proj", "kv_a_proj_with_mqa", "kv_b_proj",
    "gate_proj", "up_proj", "down_proj", "gate_up_proj", "w1", "w2", "w3", "fc1", "fc2", "dense", "out_proj",
    "c_proj"};

constexpr std::array<std::string_view, 6> kKeptModules = {"vision_tower", "vision_model", "visual", "embed_vision",
                                                         "multi_modal_projector", "mtp."};

}  // namespace

std::string ModuleName(const std::string& weight_name) {
  return EndsWith(weight_name, ".weight") ? weight_name.substr(0, weight_name.size() - 7) : weight_name;
}

LinearVerdict ClassifyTensor(const std::string& name, size_t rank, const QuantizationSelection& selection) {
  const bool is_weight = (EndsWith(name, ".weight") && rank == 2) || FusedExpertsModule(name, rank);
  for (const Regex& r : selection.exclude) {
    if (r.Search(name)) return is_weight ? LinearVerdict::kKeepLinear : LinearVerdict::kKeep;
  }
  if (!is_weight) return LinearVerdict::kKeep;
  for (const Regex& r : selection.include) {
    if (r.Search(name)) return LinearVerdict::kQuantize;
  }
  const std::string module = ModuleName(name);
  if (module == "lm_head" || EndsWith(module, ".lm_head")) {
    return selection.quantize_lm_head ? LinearVerdict::kQuantize : LinearVerdict::kKeepLinear;
  }
  for (std::string_view kept : kKeptModules) {
    if (Contains(module, kept)) return LinearVerdict::kKeepLinear;
  }
  if (!Contains(module, "layers.") && !Contains(module, ".h.") && !Contains(module, "blocks.")) return LinearVerdict::kKeep;
  const std::string leaf = module.substr(module.rfind('.') + 1);
  for (std::string_view linear : kLinearLeaves) {
    if (leaf == linear) return LinearVerdict::kQuantize;
  }
  // Routers and gates that pick experts are Linear layers the runtimes keep in high precision.
  if (leaf == "gate" || leaf == "router" || leaf == "shared_expert_gate") return LinearVerdict::kKeepLinear;
  return LinearVerdict::kKeep;
}

std::optional<std::string> FusedExpertsModule(const std::string& name, size_t rank) {
  const size_t experts = name.rfind(".experts.");
  if (rank != 3 || experts == std::string::npos || EndsWith(name, "_bias") || EndsWith(name, ".bias")) return std::nullopt;
  return name.substr(0, experts + 8);
}

std::optional<std::string> FusedGroupKey(const std::string& weight_name) {
  const std::string module = ModuleName(weight_name);
  const size_t dot = module.rfind('.');
  if (dot == std::string::npos) return std::nullopt;
  const std::string parent = module.substr(0, dot), leaf = module.substr(dot + 1);
  if (leaf == "q_proj" || leaf == "k_proj" || leaf == "v_proj") return parent + ".{q,k,v}_proj";
  if (leaf == "gate_proj" || leaf == "up_proj") return parent + ".{gate,up}_proj";
  if (leaf == "w1" || leaf == "w3") return parent + ".{w1,w3}";
  if (leaf == "q_a_proj" || leaf == "kv_a_proj_with_mqa") return parent + ".{q_a_proj,kv_a_proj_with_mqa}";
  return std::nullopt;
}

}  // namespace fp4forge
