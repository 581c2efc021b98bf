#include "fp4forge/pipeline/quantize_checkpoint.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>

#include <nlohmann/json.hpp>

#include "fp4forge/base/error.h"
#include "fp4forge/base/interrupt.h"
#include "fp4forge/io/checkpoint.h"
#include "fp4forge/io/safetensors_writer.h"
#include "fp4forge/pipeline/background_writer.h"
#include "fp4forge/pipeline/read_ahead.h"
#include "fp4forge/quant/quantize.h"
#if FP4FORGE_HAVE_CUDA
#include "fp4forge/cuda/quantize.h"
#endif

namespace fp4forge {

namespace {

namespace fs = std::filesystem;

// One input tensor and what happens to it.
struct Planned {
  const CheckpointTensor* source;
  bool quantize = false;
  std::optional<std::string> group;  // fused group key, for NVFP4 weights
  int64_t experts = 0;               // > 0: a 3-D [E, K, N] fused-expert weight of E experts
  std::optional<float> input_amax;   // W4A4: the calibrated input amax, shared in its fused group
};

// What one quantized Linear weight becomes in the output, per dialect and scheme.
struct Layout {
  CheckpointDialect dialect;
  CheckpointScheme scheme;
  Nvfp4ScaleRule rule;
  bool w4a4;  // NVFP4 with a stored input scale per Linear

  bool modelopt() const { return dialect == CheckpointDialect::kModelOpt; }
  int block_size() const { return scheme == CheckpointScheme::kNvfp4 ? kNvfp4BlockSize : kMxfp4BlockSize; }

  QuantSpec Spec() const {
    if (scheme == CheckpointScheme::kMxfp4) return Mxfp4Spec{Mxfp4ScaleRule::kCompressedTensors};
    const bool ct_arithmetic = !modelopt() && rule == Nvfp4ScaleRule::kAmax;
    return Nvfp4Spec{rule, ct_arithmetic ? Nvfp4Producer::kCompressedTensors : Nvfp4Producer::kModelOpt};
  }

  // ModelOpt (FORMATS.md §4a): <m>.weight U8 [N, K/2], <m>.weight_scale F8_E4M3 [N, K/16],
  // <m>.weight_scale_2 F32 []; 3-D experts <p> [E, K, N]: <p> U8 [E, K/2, N], <p>_weight_scale
  // F8_E4M3 [E, K/16, N], <p>_weight_scale_2 F32 [] (as ModelOpt 0.47 exports gpt-oss).
  // compressed-tensors (§4b): <m>.weight_packed, <m>.weight_scale and, for NVFP4,
  // <m>.weight_global_scale F32 [1]; MXFP4 scales are U8 [N, K/32]. W4A4 adds ModelOpt
  // <m>.input_scale F32 [] or compressed-tensors <m>.input_global_scale F32 [1].
  std::vector<TensorSpec> Tensors(const std::string& m, const std::vector<int64_t>& shape) const {
    if (shape.size() == 3) {
      const int64_t e = shape[0], k = shape[1], n = shape[2];
      return {{m, "U8", {e, k / 2, n}},
              {m + "_weight_scale", "F8_E4M3", {e, k / kNvfp4BlockSize, n}},
              {m + "_weight_scale_2", "F32", {}}};
    }
    const int64_t rows = shape[0], cols = shape[1];
    if (scheme == CheckpointScheme::kMxfp4) {
      return {{m + ".weight_packed", "U8", {rows, cols / 2}}, {m + ".weight_scale", "U8", {rows, cols / kMxfp4BlockSize}}};
    }
    std::vector<TensorSpec> specs;
    if (modelopt()) {
      specs = {{m + ".weight", "U8", {rows, cols / 2}},
               {m + ".weight_scale", "F8_E4M3", {rows, cols / kNvfp4BlockSize}},
               {m + ".weight_scale_2", "F32", {}}};
      if (w4a4) specs.push_back({m + ".input_scale", "F32", {}});
    } else {
      specs = {{m + ".weight_packed", "U8", {rows, cols / 2}},
               {m + ".weight_scale", "F8_E4M3", {rows, cols / kNvfp4BlockSize}},
               {m + ".weight_global_scale", "F32", {1}}};
      if (w4a4) specs.push_back({m + ".input_global_scale", "F32", {1}});
    }
    return specs;
  }

  // The bytes of Tensors(), in the same order; `input_amax` for W4A4.
  void Write(SafetensorsWriter& writer, const std::string& m, const std::vector<int64_t>& shape,
             const QuantizedTensor& q, std::optional<float> input_amax) const {
    const std::vector<TensorSpec> specs = Tensors(m, shape);
    auto write_scalar = [&](const TensorSpec& spec, float value) {
      writer.Write(spec.name, {reinterpret_cast<const uint8_t*>(&value), sizeof(value)});
    };
    writer.Write(specs[0].name, q.codes);
    writer.Write(specs[1].name, q.block_scales);
    if (specs.size() < 3) return;
    // compressed-tensors stores the multiplier gs = 1/S; rules other than amax computed S.
    const auto* nvfp4 = std::get_if<Nvfp4Spec>(&q.spec);
    const bool reciprocal = !modelopt() && nvfp4->producer == Nvfp4Producer::kModelOpt;
    write_scalar(specs[2], reciprocal ? 1.0f / q.tensor_scales[0] : q.tensor_scales[0]);
    if (specs.size() < 4) return;
    // FORMATS.md §3.3: ModelOpt amax/(6·448) in float32; §3.4: llm-compressor's generate_gparam on
    // the float32 amax.
    write_scalar(specs[3], modelopt() ? Nvfp4TensorScale(*input_amax, Nvfp4ScaleRule::kAmax)
                                      : Nvfp4CtGlobalScale(*input_amax, DType::kF32));
  }
};

std::vector<TensorSpec> OutputSpecs(const Planned& p, const Layout& layout) {
  const SafetensorsTensor& t = *p.source->tensor;
  if (!p.quantize) return {{t.name, t.dtype, t.shape}};
  return layout.Tensors(ModuleName(t.name), t.shape);
}

// QuantizedTensors for reuse: one handed out comes back when its last user (the writer job) drops
// it, so that tensor after tensor is quantized into the same pages instead of fresh ones (which the
// kernel zeroes: a sixth of the time of a warm run).
class BufferPool {
 public:
  std::shared_ptr<QuantizedTensor> Get() {
    std::unique_ptr<QuantizedTensor> q;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!free_.empty()) {
        q = std::move(free_.back());
        free_.pop_back();
      }
    }
    if (!q) q = std::make_unique<QuantizedTensor>();
    return {q.release(), [this](QuantizedTensor* back) {
              std::lock_guard<std::mutex> lock(mutex_);
              free_.emplace_back(back);
            }};
  }

 private:
  std::mutex mutex_;
  std::vector<std::unique_ptr<QuantizedTensor>> free_;
};

// Quantize's contract on the GPU: the tensor validated and its amax taken on the CPU, the rest there.
void QuantizeOnGpu(const QuantSpec& spec, const ConstMatrixView& x, const QuantizeOptions& options, QuantizedTensor& out) {
#if FP4FORGE_HAVE_CUDA
  if (x.cols % Traits(spec).block_size != 0) return Quantize(spec, x, options, out);  // its error, on the CPU
  const float amax = options.tensor_amax ? *options.tensor_amax : TensorAmax(x, options.threads, options.tensor_name);
  out = cuda::Quantize(spec, x, options.global_amax.value_or(amax));
#else
  (void)spec, (void)x, (void)options, (void)out;
  Fail(ErrorCode::kUnsupported, "[quantize] --device cuda: this fp4forge was built without CUDA (no nvcc when it was configured)");
#endif
}

// Jobs waiting for the writer thread: enough to keep it busy while the next tensor is quantized,
// few enough that memory stays near one tensor's quantized form.
constexpr size_t kPendingWrites = 2;

}  // namespace

int64_t ParseByteSize(const std::string& text) {
  static const std::map<std::string, int64_t> kUnits = {{"", 1}, {"B", 1}, {"KB", 1000}, {"MB", 1000'000},
                                                        {"GB", 1000'000'000}, {"KiB", 1 << 10}, {"MiB", 1 << 20},
                                                        {"GiB", int64_t{1} << 30}};
  size_t digits = 0;
  while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) ++digits;
  const auto unit = kUnits.find(text.substr(digits));
  if (digits == 0 || digits > 12 || unit == kUnits.end() || std::stoll(text.substr(0, digits)) == 0) {
    Fail(ErrorCode::kInvalidArgument, "[--max-shard-size] got '{}', expected a positive size such as 5GB, 500MB or 2GiB",
         text);
  }
  return std::stoll(text.substr(0, digits)) * unit->second;
}

namespace {

// Quantizing an already quantized checkpoint would copy its packed weights as "kept" tensors under
// a config that lists them as unquantized modules: refused, with the way out.
void RefuseQuantizedInput(const Checkpoint& in) {
  const nlohmann::json qc = in.config().value("quantization_config", nlohmann::json());
  const bool hf_quant = std::ranges::find(in.other_files(), "hf_quant_config.json") != in.other_files().end();
  const bool declared = qc.is_object() ? !qc.empty() : !qc.is_null();
  if (!declared && !hf_quant) return;
  const std::string method = qc.is_object() ? qc.value("quant_method", nlohmann::json("?")).dump() : qc.dump();
  Fail(ErrorCode::kUnsupported,
       "[quantize] '{}' is already quantized ({}); quantize takes a BF16, FP16 or FP32 checkpoint. To change an "
       "NVFP4 checkpoint's dialect use `fp4forge convert`; to quantize again, start from the original weights",
       in.dir(), declared ? fmt::format("config.json quantization_config, quant_method {}", method) : "hf_quant_config.json");
}

// The calibration's quantized form of weight t (QuantizeCheckpointOptions::prequantized).
std::shared_ptr<const QuantizedTensor> Prequantized(
    const std::map<std::string, std::shared_ptr<const QuantizedTensor>>& prequantized, const SafetensorsTensor& t) {
  const auto found = prequantized.find(ModuleName(t.name));
  if (found == prequantized.end() || found->second->rows != t.shape[0] || found->second->cols != t.shape[1]) {
    Fail(ErrorCode::kInvalidArgument, "[quantize] {}: the calibration quantized no weight of shape [{}] for it", t.name,
         fmt::join(t.shape, ", "));
  }
  return found->second;
}

// W4A4: each quantized weight's input amax from the calibration, the max of its fused group's.
void ShareInputAmax(const std::map<std::string, float>& input_amax, std::vector<Planned>& plan) {
  std::map<std::string, float> group_amax;
  for (Planned& p : plan) {
    if (!p.quantize) continue;
    const std::string& name = p.source->tensor->name;
    if (p.experts) {
      Fail(ErrorCode::kUnsupported, "[quantize] --calib: {} is a 3-D fused-expert weight, whose model the engine "
           "does not run; quantize it weight-only (without --calib)", name);
    }
    const std::string module = ModuleName(name);
    const auto found = input_amax.find(module);
    if (found == input_amax.end() || !std::isfinite(found->second) || found->second <= 0) {
      Fail(ErrorCode::kInvalidData, "[quantize] --calib: {} is quantized, but calibration {} for its input; expected "
           "a finite amax > 0 (ModelOpt asserts it: a zero scale divides by 0 in the runtime)", module,
           found == input_amax.end() ? "recorded nothing" : fmt::format("recorded amax {}", found->second));
    }
    p.input_amax = found->second;
    if (p.group) group_amax[*p.group] = std::max(group_amax[*p.group], found->second);
  }
  for (Planned& p : plan) {
    if (p.input_amax && p.group) p.input_amax = group_amax.at(*p.group);
  }
}

// Quantizes `in_dir` into the empty directory `tmp`.
void QuantizeInto(const std::string& in_dir, const fs::path& tmp, const Layout& layout,
                  const QuantizeCheckpointOptions& options, QuantizeCheckpointReport& report) {
  const Checkpoint in(in_dir);
  RefuseQuantizedInput(in);

  // Plan: what is quantized, and which fused group each quantized weight joins.
  std::vector<Planned> plan;
  for (const CheckpointTensor& t : in.tensors()) {
    Planned p;
    p.source = &t;
    const LinearVerdict verdict = ClassifyTensor(t.tensor->name, t.tensor->shape.size(), options.selection);
    const std::optional<std::string> experts = FusedExpertsModule(t.tensor->name, t.tensor->shape.size());
    if (verdict == LinearVerdict::kQuantize) {
      if (experts && !(layout.modelopt() && layout.scheme == CheckpointScheme::kNvfp4)) {
        report.warnings.push_back(fmt::format("{}: 3-D fused experts are kept in {}: only ModelOpt NVFP4 has a "
                                              "confirmed layout for them; listed as excluded", t.tensor->name,
                                              t.tensor->dtype));
      } else if (!t.tensor->FloatDType() || t.tensor->NumElements() == 0 ||
                 t.tensor->shape[1] % layout.block_size() != 0) {  // K of [N, K], [E, K, N]
        report.warnings.push_back(fmt::format("{}: {} {} cannot be quantized (needs a non-empty F32/BF16/F16 tensor "
                                              "whose input dimension is divisible by {}); kept", t.tensor->name,
                                              t.tensor->dtype, fmt::join(t.tensor->shape, "x"), layout.block_size()));
      } else {
        p.quantize = true;
        if (experts) p.experts = t.tensor->shape[0];
        if (layout.scheme == CheckpointScheme::kNvfp4) p.group = FusedGroupKey(t.tensor->name);  // MXFP4: no global scale
      }
    }
    if (!p.quantize && verdict != LinearVerdict::kKeep) {
      const std::string module = experts ? *experts : ModuleName(t.tensor->name);
      if (std::find(report.excluded_modules.begin(), report.excluded_modules.end(), module) == report.excluded_modules.end()) {
        report.excluded_modules.push_back(module);
      }
    }
    plan.push_back(p);
  }
  std::sort(report.excluded_modules.begin(), report.excluded_modules.end());
  report.excluded_modules = NonEmptyExcludeList(std::move(report.excluded_modules));
  if (layout.w4a4) ShareInputAmax(options.input_amax, plan);

  // Reading, on a thread of its own a bounded distance ahead of the quantizer: every tensor once
  // from disk into the page cache, in order, so that the disk and the cores work at once. A fused
  // group's members share one global scale from their joint amax, so the first member to be
  // quantized waits until all of them are in memory.
  std::vector<int64_t> sizes;
  std::vector<size_t> needs(plan.size());
  std::map<std::string, std::vector<size_t>> members;  // fused group -> its tensors, in order
  for (size_t i = 0; i < plan.size(); ++i) {
    sizes.push_back(plan[i].source->tensor->num_bytes);
    if (plan[i].group) members[*plan[i].group].push_back(i);
  }
  for (size_t i = 0; i < plan.size(); ++i) needs[i] = plan[i].group ? members.at(*plan[i].group).back() : i;
  constexpr int64_t kReadAheadBytes = int64_t{2} << 30;
  ReadAhead reader(sizes, needs, kReadAheadBytes, [&](size_t i) {
    if (i + 1 < plan.size()) plan[i + 1].source->source->Prefetch(*plan[i + 1].source->tensor);
    plan[i].source->source->ReadIntoCache(*plan[i].source->tensor);
  });
  std::map<std::string, float> group_amax;
  std::map<const Planned*, float> own_amax;
  auto joint_amax = [&](const std::string& group) {
    if (!group_amax.contains(group)) {
      float amax = 0.0f;
      for (size_t i : members.at(group)) {
        const Planned& m = plan[i];
        const SafetensorsTensor& t = *m.source->tensor;
        own_amax[&m] = TensorAmax(t.AsMatrix(), options.threads, fmt::format("{} ({})", t.name, m.source->file));
        amax = std::max(amax, own_amax[&m]);
        m.source->source->Release(t);
      }
      group_amax[group] = amax;
    }
    return group_amax.at(group);
  };

  // The search rule's S of each fused group, chosen on all its members at once (the amax first
  // validates their values).
  std::map<std::string, float> group_search_scale;
  auto searched_scale = [&](const std::string& group) {
    if (!group_search_scale.contains(group)) {
      const float amax = joint_amax(group);
      std::vector<ConstMatrixView> views;
      for (size_t i : members.at(group)) views.push_back(plan[i].source->tensor->AsMatrix());
      group_search_scale[group] = SearchNvfp4TensorScale(views, amax, options.threads, group);
      for (size_t i : members.at(group)) plan[i].source->source->Release(*plan[i].source->tensor);
    }
    return group_search_scale.at(group);
  };

  // Writing, tensor by tensor in input order.
  // Output shards: filled greedily in input order, as save_pretrained does.
  std::vector<std::vector<const Planned*>> shards(1);
  int64_t shard_bytes = 0;
  for (const Planned& p : plan) {
    int64_t bytes = 0;
    for (const TensorSpec& spec : OutputSpecs(p, layout)) bytes += spec.NumBytes();
    if (shard_bytes > 0 && shard_bytes + bytes > options.max_shard_bytes) {
      shards.emplace_back();
      shard_bytes = 0;
    }
    shards.back().push_back(&p);
    shard_bytes += bytes;
  }
  std::vector<std::string> files;
  for (size_t i = 0; i < shards.size(); ++i) {
    files.push_back(shards.size() == 1 ? "model.safetensors"
                                       : fmt::format("model-{:05d}-of-{:05d}.safetensors", i + 1, shards.size()));
  }
  const int total = static_cast<int>(plan.size());
  const int64_t total_bytes = in.weight_bytes();
  int done = 0;
  nlohmann::json weight_map = nlohmann::json::object();
  BufferPool buffers;  // outlives the writer, which hands the buffers back
  BackgroundWriter background(kPendingWrites);
  for (size_t shard = 0; shard < shards.size(); ++shard) {
    const std::string& file = files[shard];
    std::vector<TensorSpec> specs;
    for (const Planned* p : shards[shard]) {
      for (TensorSpec& s : OutputSpecs(*p, layout)) {
        weight_map[s.name] = file;
        report.bytes_out += s.NumBytes();
        specs.push_back(std::move(s));
      }
    }
    auto writer = std::make_shared<SafetensorsWriter>((tmp / file).string(), specs);
    for (size_t i = 0; i < shards[shard].size(); ++i) {
      const Planned* p = shards[shard][i];
      const SafetensorsTensor& t = *p->source->tensor;
      const SafetensorsFile& source = *p->source->source;
      ThrowIfInterrupted();
      reader.WaitFor(static_cast<size_t>(p - plan.data()));
      if (!p->quantize) {
        background.Submit([writer, &t, &source] {
          writer->Write(t.name, {t.data, static_cast<size_t>(t.num_bytes)});
          source.Evict(t);  // bounded memory: only the tensors at hand stay resident
        });
        ++report.kept;
      } else {
        QuantizeOptions q_options;
        q_options.threads = options.threads;
        q_options.tensor_name = fmt::format("{} ({})", t.name, p->source->file);
        if (p->group) {
          q_options.global_amax = joint_amax(*p->group);
          q_options.tensor_amax = own_amax.at(p);  // validated by TensorAmax
          if (options.rule == Nvfp4ScaleRule::kSearch) q_options.nvfp4_tensor_scale = searched_scale(*p->group);
        }
        std::shared_ptr<const QuantizedTensor> written;
        if (!options.prequantized.empty() && !p->experts) {
          written = Prequantized(options.prequantized, t);
        } else {
          std::shared_ptr<QuantizedTensor> q = buffers.Get();
          if (p->experts) {
            QuantizeBatchedExperts(layout.Spec(), t.AsMatrix(), p->experts, q_options, *q);
          } else if (options.cuda) {
            QuantizeOnGpu(layout.Spec(), t.AsMatrix(), q_options, *q);
          } else {
            Quantize(layout.Spec(), t.AsMatrix(), q_options, *q);
          }
          written = std::move(q);
        }
        // Read for the last time: dropped from the page cache too, so that the output's pages come
        // from memory just freed (writing them costs ~35% less here: BENCHMARKS.md, session 6).
        source.Evict(t);
        background.Submit([writer, written, layout, m = ModuleName(t.name), shape = t.shape, a = p->input_amax] {
          layout.Write(*writer, m, shape, *written, a);
        });
        ++report.quantized;
      }
      report.bytes_in += t.num_bytes;
      if (options.on_progress) options.on_progress(++done, total, report.bytes_in, total_bytes);
    }
    background.Submit([writer] { writer->Finish(); });
  }
  background.Drain();
  if (files.size() > 1) {
    WriteJson(tmp / "model.safetensors.index.json",
              {{"metadata", {{"total_size", report.bytes_out}}}, {"weight_map", weight_map}});
  }
  nlohmann::json config = in.config();
  config["quantization_config"] = QuantizationConfig(options.dialect, options.scheme, report.excluded_modules, layout.w4a4);
  WriteJson(tmp / "config.json", config);
  if (layout.modelopt()) WriteJson(tmp / "hf_quant_config.json", ModelOptHfQuantConfig(report.excluded_modules, layout.w4a4));
  for (const std::string& name : in.other_files()) {
    if (name == "config.json" || name == "hf_quant_config.json") continue;
    fs::copy_file(fs::path(in_dir) / name, tmp / name);
  }
}

}  // namespace

QuantizeCheckpointReport QuantizeCheckpoint(const std::string& in_dir, const std::string& out_dir,
                                            const QuantizeCheckpointOptions& options) {
  const Layout layout{options.dialect, options.scheme, options.rule, !options.input_amax.empty()};
  if (layout.w4a4 && layout.scheme != CheckpointScheme::kNvfp4) {
    Fail(ErrorCode::kInvalidArgument, "[quantize] --calib: calibrated activation scales are NVFP4's (W4A4); MXFP4 "
         "activations carry no global scale. Drop --calib or use --scheme nvfp4");
  }
  if (layout.modelopt() && layout.scheme == CheckpointScheme::kMxfp4) {
    Fail(ErrorCode::kInvalidArgument, "[quantize] --scheme mxfp4 is written in the compressed-tensors dialect only; "
         "add --format compressed-tensors");
  }
  if (layout.scheme == CheckpointScheme::kMxfp4 && layout.rule != Nvfp4ScaleRule::kAmax) {
    Fail(ErrorCode::kInvalidArgument, "[quantize] --scale {} is an NVFP4 rule; MXFP4 scales follow compressed-tensors",
         Nvfp4ScaleRuleName(layout.rule));
  }
  if (options.cuda) {
#if FP4FORGE_HAVE_CUDA
    if (!cuda::DeviceAvailable()) Fail(ErrorCode::kIo, "[quantize] --device cuda: {}", cuda::DeviceDescription());
    if (!cuda::Supports(layout.Spec())) {
      Fail(ErrorCode::kUnsupported, "[quantize] --device cuda: {} {} has no GPU kernel; the GPU quantizes NVFP4 amax, mse and "
           "4over6 in the ModelOpt dialect (run without --device cuda for the others)", Traits(layout.Spec()).format,
           Traits(layout.Spec()).rule);
    }
#else
    Fail(ErrorCode::kUnsupported, "[quantize] --device cuda: this fp4forge was built without CUDA (no nvcc when it was configured)");
#endif
  }
  QuantizeCheckpointReport report;
  BuildDirectory(in_dir, out_dir, options.force, [&](const fs::path& tmp) { QuantizeInto(in_dir, tmp, layout, options, report); });
  return report;
}

}  // namespace fp4forge
