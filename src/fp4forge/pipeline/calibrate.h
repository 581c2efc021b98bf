// What a calibration text gives `fp4forge quantize`: each Linear's input amax (W4A4 activation
// scales) and, for GPTQ or an activation-aware block-scale rule, the NVFP4 weights quantized with the
// calibration's statistics, layer by layer as the engine runs the original model over the text.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>

#include "fp4forge/engine/model.h"
#include "fp4forge/format/quantized_tensor.h"
#include "fp4forge/io/hf_names.h"

namespace fp4forge {

enum class QuantMethod {
  kRtn,   // round to nearest under the block-scale rule (activation-aware for rules that search)
  kGptq,  // GPTQ on the NVFP4 grid (quant/gptq.h)
};
QuantMethod ParseQuantMethod(const std::string& name);  // "rtn", "gptq"; throws Error(kInvalidArgument)

struct CalibrateOptions {
  int64_t context = 512;  // calibration window in tokens
  QuantMethod method = QuantMethod::kRtn;
  // The weights' format and scale rule, Nvfp4Spec or Mxfp4Spec. NVFP4 kAmax with kRtn: the weights
  // are quantize's own (bit-identical to the dialect's tool); kMse, kMseExhaustive, kFourOverSix with
  // kRtn: weighted by the inputs' second moments; with kGptq, the rule each block's scale follows
  // when GPTQ reaches it. Refused: kSearch, and MXFP4 with kRtn (it has nothing to calibrate).
  QuantSpec spec = Nvfp4Spec{};
  bool act_order = false;  // GPTQ
  QuantizationSelection selection;  // which Linears quantize will quantize (hf_names.h)
  std::function<void(int64_t done, int64_t total)> on_progress;  // after each decoder layer
};

struct Calibration {
  std::map<std::string, float> input_amax;  // every Linear's, by module
  // By module, for every Linear quantize will quantize (NVFP4 in ModelOpt arithmetic, S = group
  // amax / 2688); empty for kRtn with kAmax. Fused groups share S from their joint weight amax, as quantize does.
  std::map<std::string, std::shared_ptr<const QuantizedTensor>> weights;
};

// Runs the original `model` over `tokens` a layer at a time (engine/calibrate.h) and quantizes each
// layer's Linears once it has run. Throws what CalibrateInputs and Quantize throw, and
// Error(kInvalidArgument) for the refused combinations above.
Calibration Calibrate(engine::Model& model, std::span<const int32_t> tokens, const CalibrateOptions& options);

}  // namespace fp4forge
