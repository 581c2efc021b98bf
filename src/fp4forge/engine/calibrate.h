// Calibration: the original model run over a calibration text one decoder layer at a time, recording
// what each quantized Linear's activations need. Only one layer's weights are touched at a time (and
// released after it), plus the hidden states of every calibration token, so that a model larger than
// memory calibrates in bounded memory.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <span>
#include <string>

#include "fp4forge/engine/model.h"

namespace fp4forge::engine {

struct CalibrationOptions {
  int64_t context = 512;  // window length: tokens are cut into windows of this many (the last one may be shorter)
  // After each decoder layer: (layers done, layers in all).
  std::function<void(int64_t done, int64_t total)> on_progress;
};

// Per Linear module (lm_head included), max |x| over every element of its input on the calibration
// tokens: ModelOpt's `max` calibration and llm-compressor's static_minmax observer, in float32. MoE
// experts run on every token of their layer (Model::Observe's all_experts), so every expert has one.
// Throws Error(kUnsupported) for a model whose Linears are not all F32/BF16/F16 (calibration runs
// the original model), Error(kInvalidArgument) for no tokens, Error(kInvalidData) naming the module
// for a non-finite input.
std::map<std::string, float> CalibrateInputAmax(Model& model, std::span<const int32_t> tokens,
                                                const CalibrationOptions& options);

}  // namespace fp4forge::engine
