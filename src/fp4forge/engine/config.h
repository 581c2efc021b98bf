// What the forward pass needs to know of a model, read once from its config.json. The families the
// engine runs differ only in fields of this struct (STYLE.md: families are data, not subclasses).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace fp4forge::engine {

enum class Activation { kSilu, kGeluTanh };

// How a MoE layer turns router logits into expert weights.
enum class Routing {
  kSoftmaxTopK,  // Mixtral; Qwen3-MoE with norm_topk_prob: softmax, top k, renormalised over the k
  kSoftmaxTopKUnnormalized,  // Qwen3-MoE with norm_topk_prob false: top k of the softmax as they are
};

struct RopeConfig {
  double theta = 10000.0;
  int64_t rotary_dim = 0;  // leading dims of each head rotated (partial_rotary_factor × head_dim)
  // rope_type "llama3" (Llama 3.1+): long wavelengths stretched by `factor`, smoothly between.
  bool llama3 = false;
  double factor = 1.0, low_freq_factor = 1.0, high_freq_factor = 4.0;
  int64_t original_max_positions = 0;
};

struct ModelConfig {
  std::string model_type;  // "llama", "mistral", "qwen2", "qwen3", "phi3", "mixtral", "qwen3_moe"
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t num_layers = 0;
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t intermediate_size = 0;  // dense MLP
  int64_t max_positions = 0;
  int64_t sliding_window = 0;  // 0: every position attends to all earlier ones
  double rms_norm_eps = 1e-6;
  RopeConfig rope;
  Activation activation = Activation::kSilu;
  bool tie_embeddings = false;
  bool qkv_bias = false;      // Qwen2 (always), Llama/Mistral with attention_bias
  bool qk_norm = false;       // Qwen3: RMSNorm over each head of q and k before RoPE
  bool fused_qkv = false;     // Phi-3: one qkv_proj, rows q then k then v
  bool fused_gate_up = false;  // Phi-3: one gate_up_proj, rows gate then up

  // Mixture of experts (num_experts 0: every layer dense).
  int64_t num_experts = 0;
  int64_t experts_per_token = 0;
  int64_t moe_intermediate_size = 0;
  Routing routing = Routing::kSoftmaxTopK;
  std::vector<bool> moe_layer;  // [num_layers]
  std::string experts_prefix;   // "mlp.experts" (Qwen3-MoE) or "block_sparse_moe.experts" (Mixtral)
  std::string router_name;      // "mlp.gate" or "block_sparse_moe.gate"
  std::vector<std::string> expert_projections;  // gate, up, down leaf names: w1/w3/w2 for Mixtral

  std::vector<int64_t> eos_token_ids;
  int64_t bos_token_id = -1;  // -1: none
};

// Reads config.json (its parsed JSON; `source` names the file in errors). Throws Error(kUnsupported)
// naming model_type or the key for a family or feature the engine does not run (gpt-oss, DeepSeek,
// rope scaling other than llama3, ...), Error(kInvalidData) naming the key for a missing value or
// one of the wrong type or range.
ModelConfig ParseModelConfig(const nlohmann::json& config, const std::string& source);

}  // namespace fp4forge::engine
