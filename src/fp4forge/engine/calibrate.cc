#include "fp4forge/engine/calibrate.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "fp4forge/base/error.h"
#include "fp4forge/base/parallel.h"
#include "fp4forge/io/hf_names.h"

namespace fp4forge::engine {
namespace {

// The upper triangle of h [k, k] += x^T x for x [rows, k], rows of h split over threads.
void AccumulateHessian(const float* x, int64_t rows, int64_t k, float* h, int threads) {
  ParallelFor(k, threads, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      float* hi = h + i * k;
      for (int64_t r = 0; r < rows; ++r) {
        const float* xr = x + r * k;
        const float xi = xr[i];
        if (xi == 0.0f) continue;
        for (int64_t j = i; j < k; ++j) hi[j] += xi * xr[j];
      }
    }
  });
}

}  // namespace

std::map<std::string, InputStats> CalibrateInputs(Model& model, std::span<const int32_t> tokens,
                                                  const CalibrationOptions& options) {
  const ModelConfig& c = model.config();
  const int64_t n = static_cast<int64_t>(tokens.size()), hidden = c.hidden_size;
  if (n == 0) Fail(ErrorCode::kInvalidArgument, "[calibrate] got no calibration tokens, expected some text");
  if (options.context < 1 || options.context > c.max_positions) {
    Fail(ErrorCode::kInvalidArgument, "[calibrate] got a context of {} tokens, expected 1 to the model's {}",
         options.context, c.max_positions);
  }
  const int threads = model.pool().size();
  std::map<std::string, InputStats> stats;
  int64_t layer = 0;  // the one running
  // Linears fed the very same input share one Hessian: a fused group's members and, as every expert
  // runs on all its layer's tokens, the gate and up projections of all the layer's experts.
  auto hessian_key = [&](const std::string& module) {
    const size_t experts = module.find("." + c.experts_prefix + ".");
    const std::string leaf = module.substr(module.rfind('.') + 1);
    if (experts != std::string::npos && (leaf == c.expert_projections[0] || leaf == c.expert_projections[1])) {
      return module.substr(0, experts) + "/experts gate+up";
    }
    return FusedGroupKey(module + ".weight").value_or(module);
  };
  // Key -> (the module that accumulates the Hessian, the Hessian), for the layer at hand.
  std::map<std::string, std::pair<std::string, std::shared_ptr<std::vector<float>>>> group_hessians;
  auto observe = [&](const Linear& linear, const float* x, int64_t rows) {
    const cpu::WeightEncoding e = linear.weight.encoding;
    if (e != cpu::WeightEncoding::kF32 && e != cpu::WeightEncoding::kBF16 && e != cpu::WeightEncoding::kF16) {
      Fail(ErrorCode::kUnsupported, "[calibrate] got {} stored as {}, expected the original model's F32/BF16/F16 "
           "weights: calibrate before quantizing", linear.module, cpu::WeightEncodingName(e));
    }
    const int64_t cols = linear.weight.cols;
    InputStats& s = stats[linear.module];
    if (!s.linear) {
      s.linear = &linear;
      s.layer = layer;
      if (options.second_moments) s.second_moments.assign(cols, 0.0);
    }
    if (options.hessians && !s.hessian) {
      auto [shared, fresh] = group_hessians.try_emplace(hessian_key(linear.module));
      if (fresh) shared->second = {linear.module, std::make_shared<std::vector<float>>(cols * cols, 0.0f)};
      s.hessian = shared->second.second;
    }
    const bool owner = options.hessians && group_hessians.at(hessian_key(linear.module)).first == linear.module;
    s.rows += rows;
    for (int64_t i = 0; i < rows * cols; ++i) {
      const float v = std::fabs(x[i]);
      if (!std::isfinite(v)) {
        Fail(ErrorCode::kInvalidData, "[calibrate] got {} in the input of {}, expected finite activations (the model "
             "overflows on the calibration text)", x[i], linear.module);
      }
      s.amax = std::max(s.amax, v);
    }
    if (options.second_moments) {
      for (int64_t r = 0; r < rows; ++r) {
        for (int64_t k = 0; k < cols; ++k) s.second_moments[k] += double{x[r * cols + k]} * x[r * cols + k];
      }
    }
    if (owner) AccumulateHessian(x, rows, cols, s.hessian->data(), threads);
  };
  model.Observe(observe, /*all_experts=*/true);
  struct Reset {  // the model observes nothing once calibration ends, by error or not
    Model& m;
    ~Reset() { m.Observe({}, false); }
  } reset{model};
  // The layer's Hessians completed (lower triangle mirrored), handed over, then freed.
  auto finish_layer = [&] {
    for (auto& [group, owned] : group_hessians) {
      std::vector<float>& h = *owned.second;
      const int64_t k = stats.at(owned.first).linear->weight.cols;
      for (int64_t i = 0; i < k; ++i) {
        for (int64_t j = 0; j < i; ++j) h[i * k + j] = h[j * k + i];
      }
    }
    if (options.on_layer) options.on_layer(layer, stats);
    for (auto& [module, s] : stats) {
      if (s.layer == layer) s.hessian.reset();
    }
    group_hessians.clear();
  };

  const int64_t ctx = std::min(options.context, n), kv_dim = c.num_kv_heads * c.head_dim;
  std::vector<float> x(n * hidden);
  model.Embed(tokens, x.data());
  std::vector<float> k_cache(ctx * kv_dim), v_cache(ctx * kv_dim);
  for (layer = 0; layer < c.num_layers; ++layer) {
    for (int64_t w = 0; w < n; w += ctx) {
      model.RunLayer(layer, x.data() + w * hidden, std::min(ctx, n - w), 0, k_cache.data(), v_cache.data());
    }
    finish_layer();
    model.ReleaseLayer(layer);
    if (options.on_progress) options.on_progress(layer + 1, c.num_layers);
  }
  std::vector<float> h(ctx * hidden);
  for (int64_t w = 0; w < n; w += ctx) {  // lm_head's input, without computing the logits
    const int64_t rows = std::min(ctx, n - w);
    model.FinalNorm(x.data() + w * hidden, rows, h.data());
    observe(model.lm_head(), h.data(), rows);
  }
  finish_layer();
  return stats;
}

}  // namespace fp4forge::engine
