#include "fp4forge/engine/calibrate.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "fp4forge/base/error.h"

namespace fp4forge::engine {

std::map<std::string, float> CalibrateInputAmax(Model& model, std::span<const int32_t> tokens,
                                                const CalibrationOptions& options) {
  const ModelConfig& c = model.config();
  const int64_t n = static_cast<int64_t>(tokens.size()), hidden = c.hidden_size;
  if (n == 0) Fail(ErrorCode::kInvalidArgument, "[calibrate] got no calibration tokens, expected some text");
  if (options.context < 1 || options.context > c.max_positions) {
    Fail(ErrorCode::kInvalidArgument, "[calibrate] got a context of {} tokens, expected 1 to the model's {}",
         options.context, c.max_positions);
  }
  std::map<std::string, float> amax;
  auto observe = [&](const Linear& linear, const float* x, int64_t rows) {
    const cpu::WeightEncoding e = linear.weight.encoding;
    if (e != cpu::WeightEncoding::kF32 && e != cpu::WeightEncoding::kBF16 && e != cpu::WeightEncoding::kF16) {
      Fail(ErrorCode::kUnsupported, "[calibrate] got {} stored as {}, expected the original model's F32/BF16/F16 "
           "weights: calibrate before quantizing", linear.module, cpu::WeightEncodingName(e));
    }
    float& a = amax[linear.module];
    for (int64_t i = 0; i < rows * linear.weight.cols; ++i) {
      const float v = std::fabs(x[i]);
      if (!std::isfinite(v)) {
        Fail(ErrorCode::kInvalidData, "[calibrate] got {} in the input of {}, expected finite activations (the model "
             "overflows on the calibration text)", x[i], linear.module);
      }
      a = std::max(a, v);
    }
  };
  model.Observe(observe, /*all_experts=*/true);
  struct Reset {  // the model observes nothing once calibration ends, by error or not
    Model& m;
    ~Reset() { m.Observe({}, false); }
  } reset{model};

  const int64_t ctx = std::min(options.context, n), kv_dim = c.num_kv_heads * c.head_dim;
  std::vector<float> x(n * hidden);
  model.Embed(tokens, x.data());
  std::vector<float> k_cache(ctx * kv_dim), v_cache(ctx * kv_dim);
  for (int64_t layer = 0; layer < c.num_layers; ++layer) {
    for (int64_t w = 0; w < n; w += ctx) {
      model.RunLayer(layer, x.data() + w * hidden, std::min(ctx, n - w), 0, k_cache.data(), v_cache.data());
    }
    model.ReleaseLayer(layer);
    if (options.on_progress) options.on_progress(layer + 1, c.num_layers);
  }
  std::vector<float> h(ctx * hidden);
  for (int64_t w = 0; w < n; w += ctx) {  // lm_head's input, without computing the logits
    const int64_t rows = std::min(ctx, n - w);
    model.FinalNorm(x.data() + w * hidden, rows, h.data());
    observe(model.lm_head(), h.data(), rows);
  }
  return amax;
}

}  // namespace fp4forge::engine
