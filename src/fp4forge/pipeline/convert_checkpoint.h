// fp4forge convert: an NVFP4 checkpoint from one dialect to the other without re-quantizing
// (FORMATS.md §3.5): FP4 bytes and block scales are kept, global scales become their reciprocals,
// names and configs follow the target dialect.
#pragma once

#include <string>
#include <vector>

#include "fp4forge/pipeline/dialects.h"

namespace fp4forge {

struct ConvertReport {
  std::string from;      // the input's dialect, as inspect names it
  int modules = 0;       // quantized Linear modules converted
  int zero_blocks = 0;   // zero blocks whose scale byte was rewritten to the target's convention
  int inexact_reciprocals = 0;  // global scales whose float32 reciprocal does not round-trip (1 ulp)
};

// Validates `in_dir` with InspectCheckpoint first and refuses an invalid checkpoint with its findings
// (Error kInvalidData); refuses a dialect other than ModelOpt NVFP4/W4A16_NVFP4 or compressed-tensors
// nvfp4-pack-quantized, and a conversion to the input's own dialect (kUnsupported).
//
// Per quantized module <m>: ModelOpt weight U8 <-> compressed-tensors weight_packed (same bytes);
// weight_scale (same bytes, except blocks whose codes are all zero: ModelOpt writes 1.0 = 0x38,
// compressed-tensors 0.125 = 0x20); weight_scale_2 F32 [] <-> weight_global_scale F32 [1] and
// input_scale <-> input_global_scale as float32 reciprocals. Every other tensor, the shard layout
// and the other files are kept. Output is built beside `out_dir` and renamed at the end.
ConvertReport ConvertCheckpoint(const std::string& in_dir, const std::string& out_dir, CheckpointDialect to,
                                bool force);

}  // namespace fp4forge
