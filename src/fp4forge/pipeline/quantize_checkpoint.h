// fp4forge quantize: a Hugging Face checkpoint in, an NVFP4 checkpoint that runtimes load out,
// one tensor at a time (memory: the largest tensor and its quantized form, not the model).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "fp4forge/format/nvfp4.h"
#include "fp4forge/format/quantized_tensor.h"
#include "fp4forge/io/hf_names.h"
#include "fp4forge/pipeline/dialects.h"

namespace fp4forge {

struct QuantizeCheckpointOptions {
  CheckpointDialect dialect = CheckpointDialect::kModelOpt;
  CheckpointScheme scheme = CheckpointScheme::kNvfp4;
  // NVFP4 block scales. kAmax follows the dialect's own producer bit for bit (ModelOpt or
  // llm-compressor); the other rules use fp4forge's arithmetic, with gs = 1/S for compressed-tensors.
  Nvfp4ScaleRule rule = Nvfp4ScaleRule::kAmax;
  QuantizationSelection selection;
  // W4A4 (NVFP4): each quantized Linear's calibrated input amax (engine/calibrate.h), by module name;
  // a fused group's members get the max of theirs, as ModelOpt and llm-compressor share it. Written
  // as ModelOpt input_scale = amax/2688 or compressed-tensors input_global_scale = 2688/amax.
  // Empty: weight-only (W4A16).
  std::map<std::string, float> input_amax;
  // NVFP4 weights already quantized with a calibration (pipeline/calibrate.h: GPTQ, activation-aware
  // scales), by module: written instead of quantizing. When not empty, every 2-D NVFP4 weight
  // quantize quantizes must be here (Error(kInvalidArgument) naming it otherwise).
  std::map<std::string, std::shared_ptr<const QuantizedTensor>> prequantized;
  int threads = 0;
  // Output shards are filled in tensor order up to this size (a larger tensor gets its own shard),
  // named model-00001-of-0000N.safetensors with an index, or model.safetensors when one suffices.
  int64_t max_shard_bytes = int64_t{5} << 30;
  bool force = false;  // replace an existing output directory
  // Quantize on the GPU (cuda/quantize.h), with bytes identical to the CPU's; 3-D batched experts
  // stay on the CPU. Throws Error when fp4forge was built without CUDA, no GPU is usable, or the
  // scheme and rule have no GPU kernel.
  bool cuda = false;
  // Called after each tensor with (tensors done, tensors in all, input bytes done, input bytes in all).
  std::function<void(int, int, int64_t, int64_t)> on_progress;
};

// "5GB", "500MB", "10GiB", "123" (bytes) -> bytes; throws Error(kInvalidArgument).
int64_t ParseByteSize(const std::string& text);

struct QuantizeCheckpointReport {
  int quantized = 0;  // weights written quantized
  int kept = 0;       // tensors copied unchanged
  int64_t bytes_in = 0, bytes_out = 0;
  std::vector<std::string> excluded_modules;  // Linear modules left in high precision
  std::vector<std::string> warnings;
};

// Writes `out_dir` (built under a temporary name beside it and renamed at the end: a failure leaves
// no output) from `in_dir`. Fused siblings (q/k/v, gate/up, w1/w3, q_a/kv_a) share one global
// scale from their joint amax. Throws Error naming the file and tensor on bad input, and when
// `out_dir` exists without `force`.
QuantizeCheckpointReport QuantizeCheckpoint(const std::string& in_dir, const std::string& out_dir,
                                            const QuantizeCheckpointOptions& options);

}  // namespace fp4forge
