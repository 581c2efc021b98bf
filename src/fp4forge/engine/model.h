// A decoder-only transformer run on the CPU from its checkpoint as stored: one forward pass for
// the Llama family (Llama 2/3, Mistral, Qwen2/2.5, Qwen3, Phi-3, Mixtral, Qwen3-MoE), weights as
// typed views into the mapped safetensors files, activations in float32.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "fp4forge/base/thread_pool.h"
#include "fp4forge/cpu/matmul.h"
#include "fp4forge/engine/config.h"
#include "fp4forge/io/checkpoint.h"

namespace fp4forge::engine {

struct Linear {
  std::string module;  // e.g. "model.layers.0.self_attn.q_proj"
  cpu::WeightMatrix weight;
  std::vector<float> bias;                  // empty: none
  std::optional<float> input_global_scale;  // W4A4: inputs quantized to NVFP4 with this gs first
};

struct Expert {
  Linear gate, up, down;
};

struct Layer {
  std::vector<float> input_norm, post_attention_norm, q_norm, k_norm;  // q/k_norm: [head_dim] (Qwen3)
  Linear qkv[3];  // q, k, v; with fused_qkv only qkv[0], holding all three
  Linear o;
  Linear gate, up, down;  // dense MLP; with fused_gate_up, gate holds both and up is unused
  Linear router;          // MoE layers: [num_experts, hidden]
  std::vector<Expert> experts;
};

// Keys and values of every layer for positions [0, capacity): [layers][capacity, kv_heads, head_dim].
struct KVCache {
  int64_t capacity = 0;
  std::vector<std::vector<float>> k, v;
};

// What the loaded weights are, for reports: e.g. "nvfp4 (W4A16)", "bf16", "nvfp4 (W4A4) + bf16".
struct WeightSummary {
  std::string encodings;
  int64_t weight_bytes = 0;  // bytes the Linear and embedding weights occupy in the checkpoint
};

// Sees the input of a Linear as the forward pass feeds it, [rows, linear.weight.cols] float32,
// before any W4A4 quantization: what calibration records.
using InputObserver = std::function<void(const Linear& linear, const float* x, int64_t rows)>;

class Model {
 public:
  // Maps the checkpoint in `dir` and builds views of its weights. Throws Error naming the file,
  // key or tensor when the config or a weight is unsupported or malformed.
  Model(const std::string& dir, int threads);

  const ModelConfig& config() const { return config_; }
  const WeightSummary& summary() const { return summary_; }
  ThreadPool& pool() { return pool_; }

  KVCache NewCache(int64_t capacity) const;

  // Runs `tokens` at positions [start, start + tokens.size()) after the `start` positions already in
  // `cache`, storing their keys and values in it. Writes logits [tokens.size(), vocab] when
  // `all_logits`, else only those of the last token [vocab]. Throws Error(kInvalidArgument) for a token
  // id outside the vocabulary or positions beyond the cache.
  void Forward(std::span<const int32_t> tokens, int64_t start, KVCache& cache, bool all_logits, float* logits);

  // Forward a layer at a time, for calibration, which runs all its tokens through one layer before
  // the next. Embed writes the embeddings [tokens.size(), hidden] to x; RunLayer updates x [n, hidden]
  // in place with the decoder layer `layer` at positions [start, start + n), after the `start`
  // positions already in k_cache and v_cache ([capacity, kv_heads, head_dim] each, that layer's only).
  void Embed(std::span<const int32_t> tokens, float* x);
  void RunLayer(int64_t layer, float* x, int64_t n, int64_t start, float* k_cache, float* v_cache);
  // The final norm of x [n, hidden] into out: the input of lm_head().
  void FinalNorm(const float* x, int64_t n, float* out) const;
  const Linear& lm_head() const { return lm_head_; }
  // Drops the mapped weights of decoder layer `layer` from memory; they map back in when used again.
  void ReleaseLayer(int64_t layer);

  // Calls `observer` with the input of every Linear run from now on (an empty one: none). With
  // `all_experts`, every expert of a MoE layer runs on all the layer's tokens, not only those routed
  // to it; the layer's output still combines the routed experts alone, so only what the observer sees
  // changes: each expert's inputs cover the whole calibration set, as llm-compressor's
  // calibrate-all-experts does, and no expert is left without a scale.
  void Observe(InputObserver observer, bool all_experts);

 private:
  void Project(const Linear& linear, const float* x, int64_t rows, float* y);
  // down(act(gate(x)) · up(x)); up_proj null: gate_proj is a fused gate_up_proj (rows gate, then up).
  void Mlp(const Linear& gate_proj, const Linear* up_proj, const Linear& down_proj, const float* x, int64_t rows,
           float* out);
  void Moe(const Layer& layer, const float* x, int64_t rows, float* out);
  void RopeTable(int64_t positions);

  Checkpoint checkpoint_;
  ModelConfig config_;
  WeightSummary summary_;
  ThreadPool pool_;
  cpu::WeightMatrix embedding_;
  std::vector<Layer> layers_;
  std::vector<float> final_norm_;
  Linear lm_head_;
  std::vector<float> inv_freq_;                // [rotary_dim / 2]
  std::vector<float> rope_cos_, rope_sin_;     // [positions, rotary_dim / 2]
  std::vector<float> quantized_input_;         // W4A4 scratch
  InputObserver observer_;
  bool all_experts_ = false;
  // Activations, grown to the largest batch seen and reused: a decode step allocates nothing.
  struct Scratch {
    std::vector<float> x, h, qkv, attn, delta, part, gate, up;
  } scratch_;
};

}  // namespace fp4forge::engine
