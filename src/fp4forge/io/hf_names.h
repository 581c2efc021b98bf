// What Hugging Face tensor names mean for quantization: which weights are Linear layers of the
// transformer blocks, and which of them run fused in the runtimes (and so must share one NVFP4
// global scale). Naming knowledge lives here and nowhere else (FORMATS.md §3.2 step 4, §4a, §5).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "fp4forge/base/regex.h"

namespace fp4forge {

struct QuantizationSelection {
  std::vector<Regex> include;  // extra tensors to quantize (full weight names, matched anywhere)
  std::vector<Regex> exclude;  // tensors to keep, applied last
  bool quantize_lm_head = false;
};

enum class LinearVerdict {
  kQuantize,
  kKeep,        // not a quantizable Linear (embedding, norm, bias, router, vision tower, ...)
  kKeepLinear,  // a Linear left in high precision (lm_head, --exclude): listed as excluded module
};

// Classifies the tensor `name` of the given rank. Default: 2-D `*.weight` tensors of the blocks'
// attention and MLP/expert projections are quantized; embeddings, lm_head (unless asked), norms,
// biases, MoE routers (`mlp.gate`, `block_sparse_moe.gate`, `router`, `shared_expert_gate`), vision
// towers/projectors and MTP layers are kept. 3-D fused expert weights (FusedExpertsModule) count as
// weights of their leaf name (gate_up_proj, down_proj).
LinearVerdict ClassifyTensor(const std::string& name, size_t rank, const QuantizationSelection& selection);

// The experts module of a 3-D fused-expert weight (gpt-oss, Llama 4: "...mlp.experts.gate_up_proj"
// [E, in, out] -> "...mlp.experts"); none for anything else.
std::optional<std::string> FusedExpertsModule(const std::string& name, size_t rank);

// "model.layers.0.self_attn.q_proj.weight" -> "model.layers.0.self_attn.q_proj".
std::string ModuleName(const std::string& weight_name);

// The fused group a quantized weight belongs to, as a key shared by its siblings: q/k/v_proj,
// gate/up_proj, Mixtral w1/w3, DeepSeek q_a_proj/kv_a_proj_with_mqa. Other weights: none.
std::optional<std::string> FusedGroupKey(const std::string& weight_name);

}  // namespace fp4forge
