#include "fp4forge/pipeline/calibrate.h"

#include <algorithm>

#include "fp4forge/base/error.h"
#include "fp4forge/engine/calibrate.h"
#include "fp4forge/quant/gptq.h"
#include "fp4forge/quant/quantize.h"

namespace fp4forge {

QuantMethod ParseQuantMethod(const std::string& name) {
  if (name == "rtn") return QuantMethod::kRtn;
  if (name == "gptq") return QuantMethod::kGptq;
  Fail(ErrorCode::kInvalidArgument, "[--method] got '{}', expected rtn or gptq", name);
}

namespace {

ConstMatrixView WeightView(const cpu::WeightMatrix& w) {
  const DType dtype = w.encoding == cpu::WeightEncoding::kF32 ? DType::kF32
                      : w.encoding == cpu::WeightEncoding::kBF16 ? DType::kBF16 : DType::kF16;
  return {.data = w.values, .dtype = dtype, .rows = w.rows, .cols = w.cols};
}

}  // namespace

Calibration Calibrate(engine::Model& model, std::span<const int32_t> tokens, const CalibrateOptions& options) {
  const auto* nvfp4 = std::get_if<Nvfp4Spec>(&options.spec);
  const bool gptq = options.method == QuantMethod::kGptq;
  if (nvfp4 && nvfp4->rule == Nvfp4ScaleRule::kSearch) {
    Fail(ErrorCode::kInvalidArgument, "[--calib] --scale search has no calibrated form; use mse or mse-exhaustive, "
         "whose block scales then weigh each input channel by its calibration second moment");
  }
  if (!nvfp4 && !gptq) {
    Fail(ErrorCode::kInvalidArgument, "[--calib] MXFP4 has no activation scales; calibration serves it through GPTQ "
         "only: add --method gptq");
  }
  const bool weighted = !gptq && nvfp4->rule != Nvfp4ScaleRule::kAmax;
  const int block = Traits(options.spec).block_size;
  const int threads = model.pool().size();
  Calibration result;
  engine::CalibrationOptions calibration;
  calibration.context = options.context;
  calibration.second_moments = weighted;
  calibration.hessians = gptq;
  calibration.on_progress = options.on_progress;
  calibration.on_layer = [&](int64_t layer, const std::map<std::string, engine::InputStats>& stats) {
    if (!gptq && !weighted) return;
    // The layer's Linears that quantize quantizes, and their fused groups' joint weight amax.
    std::map<std::string, const engine::InputStats*> members;
    std::map<std::string, float> own_amax, group_amax;
    for (const auto& [module, s] : stats) {
      if (s.layer != layer || s.linear->weight.cols % block != 0 ||
          ClassifyTensor(module + ".weight", 2, options.selection) != LinearVerdict::kQuantize) {
        continue;
      }
      members[module] = &s;
      own_amax[module] = TensorAmax(WeightView(s.linear->weight), threads, module + ".weight");
      const std::string group = FusedGroupKey(module + ".weight").value_or(module);
      group_amax[group] = std::max(group_amax[group], own_amax[module]);
    }
    const GptqOptions gptq_options{.act_order = options.act_order, .threads = threads};
    std::map<const std::vector<float>*, GptqFactor> factors;  // one per Hessian: per fused group
    for (const auto& [module, s] : members) {
      const float amax = group_amax.at(FusedGroupKey(module + ".weight").value_or(module));
      auto q = std::make_shared<QuantizedTensor>();
      if (gptq) {
        const std::vector<float>* h = s->hessian.get();
        if (!factors.contains(h)) factors[h] = FactorGptqHessian(*h, s->linear->weight.cols, gptq_options);
        QuantizeGptq(options.spec, WeightView(s->linear->weight), factors.at(h), amax, gptq_options, *q);
      } else {
        QuantizeNvfp4Weighted(WeightView(s->linear->weight), s->second_moments, amax, nvfp4->rule, threads, *q);
      }
      result.weights[module] = std::move(q);
    }
  };
  for (const auto& [module, s] : engine::CalibrateInputs(model, tokens, calibration)) result.input_amax[module] = s.amax;
  return result;
}

}  // namespace fp4forge
