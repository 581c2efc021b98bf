// Calibration: the original model run over a calibration text one decoder layer at a time, recording
// what each Linear's inputs look like. Only one layer's weights are touched at a time (and released
// after it), plus the hidden states of every calibration token, so that a model larger than memory
// calibrates in bounded memory.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "fp4forge/engine/model.h"

namespace fp4forge::engine {

// What one Linear saw over the calibration tokens.
struct InputStats {
  const Linear* linear = nullptr;  // the module, with its weight as stored
  int64_t layer = 0;               // its decoder layer; num_layers for lm_head
  int64_t rows = 0;                // input rows seen
  float amax = 0;                  // max |x| over every element: ModelOpt's `max` calibration
  std::vector<double> second_moments;  // [cols] sum over rows of x_k^2 (the diagonal of X^T X), if asked
  // [cols, cols] X^T X, if asked; only until on_layer returns. Linears whose input is one and the
  // same share one: the members of a fused group (q/k/v, gate/up, w1/w3: io/hf_names.h), and the
  // gate and up projections of all experts of a MoE layer.
  std::shared_ptr<std::vector<float>> hessian;
};

struct CalibrationOptions {
  int64_t context = 512;  // window length: tokens are cut into windows of this many (the last one may be shorter)
  bool second_moments = false;
  bool hessians = false;  // X^T X per Linear: cols^2 floats each, for the layer at hand only
  // After each decoder layer (then lm_head, as layer num_layers) has seen every window: the stats so
  // far, that layer's Hessians filled. They are freed when it returns.
  std::function<void(int64_t layer, const std::map<std::string, InputStats>& stats)> on_layer;
  std::function<void(int64_t done, int64_t total)> on_progress;  // after each decoder layer
};

// Every Linear's input statistics (lm_head included), by module name, in float32 activations of the
// original model. MoE experts run on every token of their layer (Model::Observe's all_experts), so
// every expert has them. Throws Error(kUnsupported) for a model whose Linears are not all
// F32/BF16/F16 (calibration runs the original model), Error(kInvalidArgument) for no tokens or a
// context beyond the model's, Error(kInvalidData) naming the module for a non-finite input.
std::map<std::string, InputStats> CalibrateInputs(Model& model, std::span<const int32_t> tokens,
                                                  const CalibrationOptions& options);

}  // namespace fp4forge::engine
