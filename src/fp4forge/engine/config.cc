#include "fp4forge/engine/config.h"

#include <algorithm>
#include <set>

#include "fp4forge/base/error.h"

namespace fp4forge::engine {
namespace {

// Typed reads of config keys: each names the file and key it rejects.
class Reader {
 public:
  Reader(const nlohmann::json& json, std::string source) : json_(json), source_(std::move(source)) {}

  bool Has(const char* key) const { return json_.contains(key) && !json_.at(key).is_null(); }

  int64_t Int(const char* key, int64_t min, int64_t max) const {
    if (!Has(key)) Fail(ErrorCode::kInvalidData, "[{}] got no {}, expected an integer", source_, key);
    return IntOr(key, 0, min, max);
  }
  int64_t IntOr(const char* key, int64_t fallback, int64_t min, int64_t max) const {
    if (!Has(key)) return fallback;
    const nlohmann::json& v = json_.at(key);
    if (!v.is_number_integer() || v.get<int64_t>() < min || v.get<int64_t>() > max) {
      Fail(ErrorCode::kInvalidData, "[{}] got {}: {}, expected an integer in [{}, {}]", source_, key, v.dump(), min, max);
    }
    return v.get<int64_t>();
  }
  double Number(const char* key, double fallback, double min, double max) const {
    if (!Has(key)) return fallback;
    const nlohmann::json& v = json_.at(key);
    if (!v.is_number() || !(v.get<double>() >= min && v.get<double>() <= max)) {
      Fail(ErrorCode::kInvalidData, "[{}] got {}: {}, expected a number in [{}, {}]", source_, key, v.dump(), min, max);
    }
    return v.get<double>();
  }
  bool Bool(const char* key, bool fallback) const {
    if (!Has(key)) return fallback;
    const nlohmann::json& v = json_.at(key);
    if (!v.is_boolean()) Fail(ErrorCode::kInvalidData, "[{}] got {}: {}, expected true or false", source_, key, v.dump());
    return v.get<bool>();
  }
  std::string String(const char* key, const std::string& fallback) const {
    if (!Has(key)) return fallback;
    const nlohmann::json& v = json_.at(key);
    if (!v.is_string()) Fail(ErrorCode::kInvalidData, "[{}] got {}: {}, expected a string", source_, key, v.dump());
    return v.get<std::string>();
  }
  // An integer or a list of integers (eos_token_id), as a list.
  std::vector<int64_t> Ints(const char* key) const {
    if (!Has(key)) return {};
    const nlohmann::json& v = json_.at(key);
    std::vector<int64_t> out;
    for (const nlohmann::json& e : v.is_array() ? v : nlohmann::json::array({v})) {
      if (!e.is_number_integer() || e.get<int64_t>() < 0) {
        Fail(ErrorCode::kInvalidData, "[{}] got {}: {}, expected a token id or a list of them", source_, key, v.dump());
      }
      out.push_back(e.get<int64_t>());
    }
    return out;
  }
  Reader Object(const char* key) const {
    static const nlohmann::json kEmpty = nlohmann::json::object();
    if (!Has(key)) return Reader(kEmpty, source_);
    if (!json_.at(key).is_object()) {
      Fail(ErrorCode::kInvalidData, "[{}] got {}: {}, expected an object", source_, key, json_.at(key).dump());
    }
    return Reader(json_.at(key), source_ + " " + key);
  }

 private:
  const nlohmann::json& json_;
  std::string source_;
};

constexpr int64_t kMaxDim = int64_t{1} << 24;

}  // namespace

ModelConfig ParseModelConfig(const nlohmann::json& json, const std::string& source) {
  if (!json.is_object()) Fail(ErrorCode::kInvalidData, "[{}] got {}, expected a JSON object", source, json.type_name());
  const Reader r(json, source);
  ModelConfig c;
  c.model_type = r.String("model_type", "");
  static const std::set<std::string> kFamilies = {"llama", "mistral", "qwen2", "qwen3", "phi3", "mixtral", "qwen3_moe"};
  if (!kFamilies.contains(c.model_type)) {
    Fail(ErrorCode::kUnsupported, "[{}] got model_type \"{}\", expected one the engine runs: llama, mistral, qwen2, "
         "qwen3, phi3, mixtral, qwen3_moe", source, c.model_type);
  }
  c.vocab_size = r.Int("vocab_size", 1, kMaxDim);
  c.hidden_size = r.Int("hidden_size", 1, kMaxDim);
  c.num_layers = r.Int("num_hidden_layers", 1, 4096);
  c.num_heads = r.Int("num_attention_heads", 1, 4096);
  c.num_kv_heads = r.IntOr("num_key_value_heads", c.num_heads, 1, c.num_heads);
  if (c.num_heads % c.num_kv_heads != 0) {
    Fail(ErrorCode::kInvalidData, "[{}] got num_attention_heads {} and num_key_value_heads {}, expected a multiple",
         source, c.num_heads, c.num_kv_heads);
  }
  c.head_dim = r.IntOr("head_dim", c.hidden_size / c.num_heads, 1, kMaxDim);
  c.intermediate_size = r.Int("intermediate_size", 1, kMaxDim);
  c.max_positions = r.IntOr("max_position_embeddings", 2048, 1, int64_t{1} << 30);
  c.rms_norm_eps = r.Number("rms_norm_eps", 1e-6, 0.0, 1.0);
  c.tie_embeddings = r.Bool("tie_word_embeddings", false);
  c.bos_token_id = r.IntOr("bos_token_id", -1, 0, c.vocab_size - 1);
  c.eos_token_ids = r.Ints("eos_token_id");

  const std::string act = r.String("hidden_act", "silu");
  if (act == "silu") {
    c.activation = Activation::kSilu;
  } else if (act == "gelu_pytorch_tanh") {
    c.activation = Activation::kGeluTanh;
  } else {
    Fail(ErrorCode::kUnsupported, "[{}] got hidden_act \"{}\", expected silu or gelu_pytorch_tanh", source, act);
  }

  // RoPE: transformers 5 writes rope_parameters (theta inside); older configs rope_theta + rope_scaling.
  const Reader rope = r.Has("rope_parameters") ? r.Object("rope_parameters") : r.Object("rope_scaling");
  c.rope.theta = rope.Number("rope_theta", r.Number("rope_theta", 10000.0, 1.0, 1e12), 1.0, 1e12);
  const double partial = rope.Number("partial_rotary_factor", r.Number("partial_rotary_factor", 1.0, 0.0, 1.0), 0.0, 1.0);
  c.rope.rotary_dim = static_cast<int64_t>(static_cast<double>(c.head_dim) * partial);
  if (c.rope.rotary_dim % 2 != 0 || c.rope.rotary_dim == 0) {
    Fail(ErrorCode::kInvalidData, "[{}] got partial_rotary_factor {} of head_dim {}, expected an even rotary dim",
         source, partial, c.head_dim);
  }
  const std::string rope_type = rope.String("rope_type", rope.String("type", "default"));
  if (rope_type == "llama3") {
    c.rope.llama3 = true;
    c.rope.factor = rope.Number("factor", 1.0, 1.0, 1e6);
    c.rope.low_freq_factor = rope.Number("low_freq_factor", 1.0, 0.0, 1e6);
    c.rope.high_freq_factor = rope.Number("high_freq_factor", 4.0, c.rope.low_freq_factor + 1e-9, 1e6);
    c.rope.original_max_positions = rope.Int("original_max_position_embeddings", 1, int64_t{1} << 30);
  } else if (rope_type != "default") {
    Fail(ErrorCode::kUnsupported, "[{}] got rope_type \"{}\", expected default or llama3", source, rope_type);
  }

  c.qkv_bias = c.model_type == "qwen2" || r.Bool("attention_bias", false);
  c.qk_norm = c.model_type == "qwen3" || c.model_type == "qwen3_moe";
  c.fused_qkv = c.fused_gate_up = c.model_type == "phi3";
  if (c.model_type == "mistral" || c.model_type == "mixtral") {
    c.sliding_window = r.IntOr("sliding_window", 0, 1, int64_t{1} << 30);
  } else if (r.Bool("use_sliding_window", false)) {
    Fail(ErrorCode::kUnsupported, "[{}] got use_sliding_window true, expected false", source);
  }

  c.moe_layer.assign(c.num_layers, false);
  if (c.model_type == "mixtral") {
    c.num_experts = r.Int("num_local_experts", 1, 4096);
    c.moe_intermediate_size = c.intermediate_size;
    c.experts_prefix = "block_sparse_moe.experts";
    c.router_name = "block_sparse_moe.gate";
    c.expert_projections = {"w1", "w3", "w2"};
    std::fill(c.moe_layer.begin(), c.moe_layer.end(), true);
  } else if (c.model_type == "qwen3_moe") {
    c.num_experts = r.Has("num_experts") ? r.Int("num_experts", 1, 4096) : r.Int("num_local_experts", 1, 4096);
    c.moe_intermediate_size = r.Int("moe_intermediate_size", 1, kMaxDim);
    c.experts_prefix = "mlp.experts";
    c.router_name = "mlp.gate";
    c.expert_projections = {"gate_proj", "up_proj", "down_proj"};
    if (!r.Bool("norm_topk_prob", false)) c.routing = Routing::kSoftmaxTopKUnnormalized;
    const int64_t step = r.IntOr("decoder_sparse_step", 1, 1, c.num_layers);
    std::set<int64_t> dense_only;
    if (r.Has("mlp_only_layers")) {
      const nlohmann::json& v = json.at("mlp_only_layers");
      if (!v.is_array()) Fail(ErrorCode::kInvalidData, "[{}] got mlp_only_layers {}, expected a list", source, v.dump());
      for (const nlohmann::json& e : v) {
        if (!e.is_number_integer()) {
          Fail(ErrorCode::kInvalidData, "[{}] got mlp_only_layers {}, expected layer indices", source, v.dump());
        }
        dense_only.insert(e.get<int64_t>());
      }
    }
    for (int64_t i = 0; i < c.num_layers; ++i) c.moe_layer[i] = !dense_only.contains(i) && (i + 1) % step == 0;
  }
  if (c.num_experts > 0) c.experts_per_token = r.Int("num_experts_per_tok", 1, c.num_experts);
  return c;
}

}  // namespace fp4forge::engine
