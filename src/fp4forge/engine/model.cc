#include "fp4forge/engine/model.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <set>

#include "fp4forge/base/error.h"
#include "fp4forge/cpu/ops.h"
#include "fp4forge/io/linear_tensors.h"

namespace fp4forge::engine {
namespace {

cpu::WeightEncoding DenseEncoding(const SafetensorsTensor& t) {
  return t.dtype == "F32" ? cpu::WeightEncoding::kF32
         : t.dtype == "BF16" ? cpu::WeightEncoding::kBF16 : cpu::WeightEncoding::kF16;
}

// The float vector of a bias or norm tensor.
std::vector<float> VectorOf(const Checkpoint& checkpoint, const SafetensorsTensor& t) {
  return ReadVector(checkpoint, t.name, t.NumElements());
}

// Inverse frequencies of the rotary embedding, as transformers computes them (float32 of
// base^(2i/dim)), with the llama3 rule's stretching of long wavelengths.
std::vector<float> InverseFrequencies(const RopeConfig& rope) {
  const int64_t half = rope.rotary_dim / 2;
  std::vector<float> inv(half);
  for (int64_t i = 0; i < half; ++i) {
    const float exponent = static_cast<float>(2 * i) / static_cast<float>(rope.rotary_dim);
    inv[i] = 1.0f / std::pow(static_cast<float>(rope.theta), exponent);
    if (!rope.llama3) continue;
    const double old_context = static_cast<double>(rope.original_max_positions);
    const double low_wavelen = old_context / rope.low_freq_factor, high_wavelen = old_context / rope.high_freq_factor;
    const double wavelen = 2 * std::numbers::pi / inv[i];
    if (wavelen > low_wavelen) {
      inv[i] = static_cast<float>(inv[i] / rope.factor);
    } else if (wavelen >= high_wavelen) {
      const double smooth = (old_context / wavelen - rope.low_freq_factor) / (rope.high_freq_factor - rope.low_freq_factor);
      inv[i] = static_cast<float>((1 - smooth) * inv[i] / rope.factor + smooth * inv[i]);
    }
  }
  return inv;
}

template <typename T>
void Grow(std::vector<T>& v, int64_t n) {
  if (static_cast<int64_t>(v.size()) < n) v.resize(static_cast<size_t>(n));
}

}  // namespace

// Loading ----------------------------------------------------------------------------------------

namespace {

struct Loader {
  const Checkpoint& checkpoint;
  std::set<std::string> encodings;
  int64_t weight_bytes = 0;

  Linear Load(const std::string& module, int64_t rows, int64_t cols) {
    const LinearTensors t = FindLinear(checkpoint, module);
    if (t.rows != rows || t.cols != cols) {
      Fail(ErrorCode::kInvalidData, "[Model] got {} of shape [{}, {}], expected [{}, {}] from config.json", module,
           t.rows, t.cols, rows, cols);
    }
    Linear l;
    l.module = module;
    l.weight = {.rows = rows, .cols = cols, .values = t.weight->data, .tensor_scalar = t.tensor_scalar};
    switch (t.scheme) {
      case LinearScheme::kDense: l.weight.encoding = DenseEncoding(*t.weight); break;
      case LinearScheme::kNvfp4:
        l.weight.encoding = cpu::WeightEncoding::kNvfp4;
        l.weight.block_scales = t.block_scales->data;
        l.weight.producer = t.reciprocal_tensor_scalar ? Nvfp4Producer::kCompressedTensors : Nvfp4Producer::kModelOpt;
        break;
      case LinearScheme::kMxfp4:
        l.weight.encoding = cpu::WeightEncoding::kMxfp4;
        l.weight.block_scales = t.block_scales->data;
        break;
      case LinearScheme::kFp8:
        l.weight.encoding = cpu::WeightEncoding::kFp8;
        l.weight.row_scales = t.row_scales ? t.row_scales->data : nullptr;
        break;
    }
    l.input_global_scale = t.input_global_scale;
    if (t.bias) l.bias = VectorOf(checkpoint, *t.bias);
    std::string name(cpu::WeightEncodingName(l.weight.encoding));
    if (t.scheme == LinearScheme::kNvfp4) name += t.input_global_scale ? " (W4A4)" : " (W4A16)";
    encodings.insert(name);
    weight_bytes += l.weight.StoredBytes();
    return l;
  }
};

}  // namespace

Model::Model(const std::string& dir, int threads)
    : checkpoint_(dir), config_(ParseModelConfig(checkpoint_.config(), dir + "/config.json")), pool_(threads) {
  const ModelConfig& c = config_;
  Loader loader{checkpoint_, {}, 0};
  const int64_t hidden = c.hidden_size, q_dim = c.num_heads * c.head_dim, kv_dim = c.num_kv_heads * c.head_dim;

  const SafetensorsTensor* embed = checkpoint_.Find("model.embed_tokens.weight");
  if (!embed || !embed->FloatDType() || embed->shape != std::vector<int64_t>{c.vocab_size, hidden}) {
    Fail(ErrorCode::kInvalidData, "[Model] got {}, expected model.embed_tokens.weight F32/BF16/F16 [{}, {}]",
         embed ? fmt::format("{} [{}]", embed->dtype, fmt::join(embed->shape, ", ")) : "no such tensor", c.vocab_size,
         hidden);
  }
  embedding_ = {.encoding = DenseEncoding(*embed), .rows = c.vocab_size, .cols = hidden, .values = embed->data};
  final_norm_ = ReadVector(checkpoint_, "model.norm.weight", hidden);
  if (c.tie_embeddings && !checkpoint_.Find("lm_head.weight")) {
    lm_head_.module = "lm_head";
    lm_head_.weight = embedding_;
  } else {
    lm_head_ = loader.Load("lm_head", c.vocab_size, hidden);
  }

  layers_.resize(c.num_layers);
  for (int64_t i = 0; i < c.num_layers; ++i) {
    Layer& l = layers_[i];
    const std::string p = fmt::format("model.layers.{}.", i);
    l.input_norm = ReadVector(checkpoint_, p + "input_layernorm.weight", hidden);
    l.post_attention_norm = ReadVector(checkpoint_, p + "post_attention_layernorm.weight", hidden);
    if (c.fused_qkv) {
      l.qkv[0] = loader.Load(p + "self_attn.qkv_proj", q_dim + 2 * kv_dim, hidden);
    } else {
      l.qkv[0] = loader.Load(p + "self_attn.q_proj", q_dim, hidden);
      l.qkv[1] = loader.Load(p + "self_attn.k_proj", kv_dim, hidden);
      l.qkv[2] = loader.Load(p + "self_attn.v_proj", kv_dim, hidden);
    }
    if (c.qkv_bias && !c.fused_qkv) {
      for (const Linear& proj : l.qkv) {
        if (proj.bias.empty()) {
          Fail(ErrorCode::kInvalidData, "[Model] got no bias of {}self_attn q/k/v_proj, expected one ({} has qkv bias)", p,
               c.model_type);
        }
      }
    }
    l.o = loader.Load(p + "self_attn.o_proj", hidden, q_dim);
    if (c.qk_norm) {
      l.q_norm = ReadVector(checkpoint_, p + "self_attn.q_norm.weight", c.head_dim);
      l.k_norm = ReadVector(checkpoint_, p + "self_attn.k_norm.weight", c.head_dim);
    }
    if (c.moe_layer[i]) {
      l.router = loader.Load(p + c.router_name, c.num_experts, hidden);
      for (int64_t e = 0; e < c.num_experts; ++e) {
        const std::string ep = fmt::format("{}{}.{}.", p, c.experts_prefix, e);
        const int64_t inter = c.moe_intermediate_size;
        l.experts.push_back({.gate = loader.Load(ep + c.expert_projections[0], inter, hidden),
                             .up = loader.Load(ep + c.expert_projections[1], inter, hidden),
                             .down = loader.Load(ep + c.expert_projections[2], hidden, inter)});
      }
    } else if (c.fused_gate_up) {
      l.gate = loader.Load(p + "mlp.gate_up_proj", 2 * c.intermediate_size, hidden);
      l.down = loader.Load(p + "mlp.down_proj", hidden, c.intermediate_size);
    } else {
      l.gate = loader.Load(p + "mlp.gate_proj", c.intermediate_size, hidden);
      l.up = loader.Load(p + "mlp.up_proj", c.intermediate_size, hidden);
      l.down = loader.Load(p + "mlp.down_proj", hidden, c.intermediate_size);
    }
  }
  loader.weight_bytes += embedding_.StoredBytes();
  summary_ = {.encodings = fmt::format("{}", fmt::join(loader.encodings, " + ")), .weight_bytes = loader.weight_bytes};
  inv_freq_ = InverseFrequencies(c.rope);
}

KVCache Model::NewCache(int64_t capacity) const {
  KVCache cache;
  cache.capacity = capacity;
  const size_t size = static_cast<size_t>(capacity * config_.num_kv_heads * config_.head_dim);
  cache.k.assign(config_.num_layers, std::vector<float>(size));
  cache.v.assign(config_.num_layers, std::vector<float>(size));
  return cache;
}

// Forward ----------------------------------------------------------------------------------------

void Model::RopeTable(int64_t positions) {
  const int64_t half = config_.rope.rotary_dim / 2;
  const int64_t have = static_cast<int64_t>(rope_cos_.size()) / half;
  if (have >= positions) return;
  rope_cos_.resize(positions * half);
  rope_sin_.resize(positions * half);
  for (int64_t p = have; p < positions; ++p) {
    for (int64_t i = 0; i < half; ++i) {
      const float angle = static_cast<float>(p) * inv_freq_[i];  // float32, as transformers
      rope_cos_[p * half + i] = std::cos(angle);
      rope_sin_[p * half + i] = std::sin(angle);
    }
  }
}

void Model::Project(const Linear& linear, const float* x, int64_t rows, float* y) {
  const cpu::WeightMatrix& w = linear.weight;
  if (observer_) observer_(linear, x, rows);
  if (linear.input_global_scale) {
    Grow(quantized_input_, rows * w.cols);
    cpu::QuantizeActivationsNvfp4(x, rows, w.cols, *linear.input_global_scale, quantized_input_.data());
    x = quantized_input_.data();
  }
  cpu::MatMul(w, x, rows, y, pool_);
  if (!linear.bias.empty()) {
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t n = 0; n < w.rows; ++n) y[r * w.rows + n] += linear.bias[n];
    }
  }
}

void Model::Mlp(const Linear& gate_proj, const Linear* up_proj, const Linear& down_proj, const float* x, int64_t rows,
                float* out) {
  const int64_t inter = down_proj.weight.cols;
  std::vector<float>& gate = scratch_.gate;
  std::vector<float>& up = scratch_.up;
  Grow(gate, rows * (up_proj ? inter : 2 * inter));
  Grow(up, rows * inter);
  Project(gate_proj, x, rows, gate.data());
  if (!up_proj) {  // rows of gate_up_proj: gate, then up
    for (int64_t r = 0; r < rows; ++r) {  // forward: row r moves down onto rows already read
      std::copy_n(gate.data() + r * 2 * inter + inter, inter, up.data() + r * inter);
      std::copy_n(gate.data() + r * 2 * inter, inter, gate.data() + r * inter);
    }
  } else {
    Project(*up_proj, x, rows, up.data());
  }
  if (config_.activation == Activation::kSilu) {
    cpu::SiluMul(gate.data(), up.data(), rows * inter);
  } else {
    cpu::GeluTanhMul(gate.data(), up.data(), rows * inter);
  }
  Project(down_proj, gate.data(), rows, out);
}

void Model::Moe(const Layer& layer, const float* x, int64_t rows, float* out) {
  const ModelConfig& c = config_;
  const int64_t hidden = c.hidden_size, experts = c.num_experts, k = c.experts_per_token;
  std::vector<float> logits(rows * experts);
  Project(layer.router, x, rows, logits.data());
  // Per expert, the tokens routed to it and their weights.
  std::vector<std::vector<int64_t>> tokens(experts);
  std::vector<std::vector<float>> weights(experts);
  for (int64_t r = 0; r < rows; ++r) {
    const float* l = logits.data() + r * experts;
    const float max_logit = *std::max_element(l, l + experts);
    std::vector<float> p(experts);
    float sum = 0;
    for (int64_t e = 0; e < experts; ++e) sum += p[e] = std::exp(l[e] - max_logit);
    for (float& v : p) v /= sum;
    std::vector<int64_t> order(experts);
    for (int64_t e = 0; e < experts; ++e) order[e] = e;
    // Highest probability first; ties to the lower index, as torch.topk.
    std::partial_sort(order.begin(), order.begin() + k, order.end(),
                      [&](int64_t a, int64_t b) { return p[a] > p[b] || (p[a] == p[b] && a < b); });
    float top_sum = 0;
    for (int64_t j = 0; j < k; ++j) top_sum += p[order[j]];
    for (int64_t j = 0; j < k; ++j) {
      const int64_t e = order[j];
      tokens[e].push_back(r);
      weights[e].push_back(c.routing == Routing::kSoftmaxTopK ? p[e] / top_sum : p[e]);
    }
  }
  std::fill(out, out + rows * hidden, 0.0f);
  std::vector<float> xs, ys;
  const bool all = observer_ && all_experts_;  // every expert on every row; ys row r is token r
  for (int64_t e = 0; e < experts; ++e) {
    const int64_t routed = static_cast<int64_t>(tokens[e].size());
    if (routed == 0 && !all) continue;
    const int64_t n = all ? rows : routed;
    ys.resize(n * hidden);
    const float* input = x;
    if (!all) {
      xs.resize(n * hidden);
      for (int64_t j = 0; j < n; ++j) std::copy_n(x + tokens[e][j] * hidden, hidden, xs.data() + j * hidden);
      input = xs.data();
    }
    const Expert& ex = layer.experts[e];
    Mlp(ex.gate, &ex.up, ex.down, input, n, ys.data());
    for (int64_t j = 0; j < routed; ++j) {
      float* o = out + tokens[e][j] * hidden;
      const float* y = ys.data() + (all ? tokens[e][j] : j) * hidden;
      for (int64_t d = 0; d < hidden; ++d) o[d] += weights[e][j] * y[d];
    }
  }
}

void Model::Observe(InputObserver observer, bool all_experts) {
  observer_ = std::move(observer);
  all_experts_ = all_experts;
}

void Model::ReleaseLayer(int64_t layer) {
  const std::string prefix = fmt::format("model.layers.{}.", layer);
  for (const CheckpointTensor& t : checkpoint_.tensors()) {
    if (t.tensor->name.starts_with(prefix)) checkpoint_.Release(t.tensor->name);
  }
}

void Model::Embed(std::span<const int32_t> tokens, float* x) {
  const ModelConfig& c = config_;
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] < 0 || tokens[i] >= c.vocab_size) {
      Fail(ErrorCode::kInvalidArgument, "[Forward] got token id {}, expected one in [0, {})", tokens[i], c.vocab_size);
    }
    cpu::DecodeRows(embedding_, tokens[i], tokens[i] + 1, x + i * c.hidden_size);
  }
}

void Model::RunLayer(int64_t li, float* x, int64_t n, int64_t start, float* kc, float* vc) {
  const ModelConfig& c = config_;
  const int64_t hidden = c.hidden_size, hd = c.head_dim;
  const int64_t q_dim = c.num_heads * hd, kv_dim = c.num_kv_heads * hd, qkv_dim = q_dim + 2 * kv_dim;
  std::vector<float>& h = scratch_.h;
  std::vector<float>& qkv = scratch_.qkv;
  std::vector<float>& attn = scratch_.attn;
  std::vector<float>& delta = scratch_.delta;
  std::vector<float>& part = scratch_.part;
  Grow(h, n * hidden);
  Grow(qkv, n * qkv_dim);
  Grow(attn, n * q_dim);
  Grow(delta, n * hidden);
  RopeTable(start + n);
  const int64_t half = c.rope.rotary_dim / 2;
  const Layer& layer = layers_[li];
  cpu::RmsNorm(x, n, hidden, layer.input_norm.data(), static_cast<float>(c.rms_norm_eps), h.data());
  if (c.fused_qkv) {
    Project(layer.qkv[0], h.data(), n, qkv.data());
  } else {  // q | k | v side by side in each row of qkv
    const int64_t offsets[3] = {0, q_dim, q_dim + kv_dim}, widths[3] = {q_dim, kv_dim, kv_dim};
    for (int j = 0; j < 3; ++j) {
      Grow(part, n * widths[j]);
      Project(layer.qkv[j], h.data(), n, part.data());
      for (int64_t i = 0; i < n; ++i) std::copy_n(part.data() + i * widths[j], widths[j], qkv.data() + i * qkv_dim + offsets[j]);
    }
  }
  for (int64_t i = 0; i < n; ++i) {
    float* q = qkv.data() + i * qkv_dim;
    float* k = q + q_dim;
    if (c.qk_norm) {
      cpu::RmsNorm(q, c.num_heads, hd, layer.q_norm.data(), static_cast<float>(c.rms_norm_eps), q);
      cpu::RmsNorm(k, c.num_kv_heads, hd, layer.k_norm.data(), static_cast<float>(c.rms_norm_eps), k);
    }
    const float* cos = rope_cos_.data() + (start + i) * half;
    const float* sin = rope_sin_.data() + (start + i) * half;
    cpu::ApplyRope(q, c.num_heads, hd, half, cos, sin);
    cpu::ApplyRope(k, c.num_kv_heads, hd, half, cos, sin);
    std::copy_n(k, kv_dim, kc + (start + i) * kv_dim);
    std::copy_n(k + kv_dim, kv_dim, vc + (start + i) * kv_dim);
  }
  cpu::Attention({.num_tokens = n, .num_heads = c.num_heads, .num_kv_heads = c.num_kv_heads, .head_dim = hd,
                  .first_position = start, .sliding_window = c.sliding_window},
                 qkv.data(), qkv_dim, kc, vc, attn.data(), pool_);
  Project(layer.o, attn.data(), n, delta.data());
  for (int64_t j = 0; j < n * hidden; ++j) x[j] += delta[j];
  cpu::RmsNorm(x, n, hidden, layer.post_attention_norm.data(), static_cast<float>(c.rms_norm_eps), h.data());
  if (c.moe_layer[li]) {
    Moe(layer, h.data(), n, delta.data());
  } else {
    Mlp(layer.gate, c.fused_gate_up ? nullptr : &layer.up, layer.down, h.data(), n, delta.data());
  }
  for (int64_t j = 0; j < n * hidden; ++j) x[j] += delta[j];
}

void Model::FinalNorm(const float* x, int64_t n, float* out) const {
  cpu::RmsNorm(x, n, config_.hidden_size, final_norm_.data(), static_cast<float>(config_.rms_norm_eps), out);
}

void Model::Forward(std::span<const int32_t> tokens, int64_t start, KVCache& cache, bool all_logits, float* logits) {
  const int64_t n = static_cast<int64_t>(tokens.size());
  if (n == 0) return;
  if (start < 0 || start + n > cache.capacity) {
    Fail(ErrorCode::kInvalidArgument, "[Forward] got positions [{}, {}), expected within the cache's {}", start,
         start + n, cache.capacity);
  }
  const int64_t hidden = config_.hidden_size;
  std::vector<float>& x = scratch_.x;
  Grow(x, n * hidden);
  Embed(tokens, x.data());
  for (int64_t li = 0; li < config_.num_layers; ++li) {
    RunLayer(li, x.data(), n, start, cache.k[li].data(), cache.v[li].data());
  }
  const int64_t first = all_logits ? 0 : n - 1;
  std::vector<float>& h = scratch_.h;
  FinalNorm(x.data() + first * hidden, n - first, h.data());
  Project(lm_head_, h.data(), n - first, logits);
}

}  // namespace fp4forge::engine
