// fp4forge quantize IN_DIR OUT_DIR: a Hugging Face checkpoint to NVFP4.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "commands.h"
#include "engine_cli.h"
#include "fp4forge/base/error.h"
#include "fp4forge/pipeline/calibrate.h"
#include "fp4forge/pipeline/quantize_checkpoint.h"

namespace fp4forge::cli {

namespace {

struct Options {
  std::string in_dir, out_dir;
  std::string format = "modelopt";
  std::string scheme = "nvfp4";
  std::string scale = "amax";
  std::vector<std::string> include, exclude;
  bool quantize_lm_head = false;
  int threads = 0;
  std::string max_shard_size = "5GB";
  bool force = false;
  bool quiet = false;
  std::string device = "cpu";
  std::string calib, calib_ids;  // calibration text, or token ids: W4A4
  int64_t calib_tokens = 65536, calib_ctx = 512;
  std::string method = "rtn";
  bool act_order = false;
  bool weight_only = false;  // with --calib: W4A16
};

// This process's peak resident memory so far (VmHWM of /proc/self/status: unlike getrusage's
// ru_maxrss, it does not carry the high-water mark of the process that started this one); 0 if unknown.
double PeakResidentMiB() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.starts_with("VmHWM:")) return std::stod(line.substr(6)) / 1024.0;  // "VmHWM:   1234 kB"
  }
  return 0;
}

// Calibrates on the first `calib_tokens` tokens of the calibration text (BOS first) or ids, the
// original model run a layer at a time: input amax for W4A4, and the weights for GPTQ or an
// activation-aware rule.
Calibration Calibrate(const Options& o, const QuantizeCheckpointOptions& quantize) {
  const auto start = std::chrono::steady_clock::now();
  std::unique_ptr<engine::Model> loaded;
  try {
    loaded = std::make_unique<engine::Model>(o.in_dir, o.threads);
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kUnsupported) throw;
    Fail(ErrorCode::kUnsupported, "{}; --calib runs the model in fp4forge's engine, which does not run this one: "
         "quantize it without --calib (weight-only, round to nearest)", e.what());
  }
  engine::Model& model = *loaded;
  std::vector<int32_t> tokens;
  if (!o.calib_ids.empty()) {
    tokens = ReadTokenIds(o.calib_ids);
  } else {
    const engine::Tokenizer tokenizer = LoadTokenizer(o.in_dir, &model);
    if (model.config().bos_token_id >= 0) tokens.push_back(static_cast<int32_t>(model.config().bos_token_id));
    const std::vector<int32_t> text = tokenizer.Encode(ReadTextFile(o.calib));
    tokens.insert(tokens.end(), text.begin(), text.end());
  }
  if (static_cast<int64_t>(tokens.size()) > o.calib_tokens) tokens.resize(o.calib_tokens);
  CalibrateOptions options;
  options.context = std::min<int64_t>(o.calib_ctx, model.config().max_positions);
  options.method = ParseQuantMethod(o.method);
  options.spec = quantize.scheme == CheckpointScheme::kMxfp4 ? QuantSpec{Mxfp4Spec{Mxfp4ScaleRule::kCompressedTensors}}
                                                            : QuantSpec{Nvfp4Spec{quantize.rule}};
  options.act_order = o.act_order;
  options.selection = quantize.selection;
  auto seconds = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
  if (!o.quiet && ::isatty(STDERR_FILENO)) {
    options.on_progress = [&](int64_t done, int64_t total) {
      fmt::print(stderr, "\rcalibrating on {} tokens: layer {}/{}  {:.1f} s  ETA {:.0f} s   ", tokens.size(), done, total,
                 seconds(), seconds() / done * (total - done));
    };
  }
  Calibration calibration = fp4forge::Calibrate(model, tokens, options);
  if (options.on_progress) fmt::print(stderr, "\n");
  if (!o.quiet) {
    const int64_t layers = model.config().num_layers;
    fmt::print("calibrated {} Linear inputs on {} tokens of {} (windows of {}){} in {:.1f} s ({:.2f} s per layer), "
               "peak memory {:.0f} MiB\n",
               calibration.input_amax.size(), tokens.size(), o.calib_ids.empty() ? o.calib : o.calib_ids,
               options.context,
               calibration.weights.empty() ? "" : fmt::format(", {} weights quantized by {} ({} scales)",
                                                              calibration.weights.size(), o.method, o.scale),
               seconds(), seconds() / std::max<int64_t>(layers, 1), PeakResidentMiB());
  }
  return calibration;
}

void Run(const Options& o) {
  QuantizeCheckpointOptions options;
  options.dialect = ParseCheckpointDialect(o.format);
  options.scheme = ParseCheckpointScheme(o.scheme);
  options.rule = ParseNvfp4ScaleRule(o.scale);
  for (const std::string& r : o.include) options.selection.include.emplace_back(r, "--include");
  for (const std::string& r : o.exclude) options.selection.exclude.emplace_back(r, "--exclude");
  options.selection.quantize_lm_head = o.quantize_lm_head;
  options.threads = o.threads;
  options.max_shard_bytes = ParseByteSize(o.max_shard_size);
  options.force = o.force;
  options.cuda = o.device == "cuda";
  const bool calibrated = !o.calib.empty() || !o.calib_ids.empty();
  if (!calibrated && (o.method != "rtn" || o.act_order || o.weight_only)) {
    Fail(ErrorCode::kInvalidArgument, "[--method] --method gptq, --act-order and --weight-only need calibration "
         "inputs: add --calib FILE");
  }
  if (calibrated) {
    Calibration calibration = Calibrate(o, options);
    // MXFP4 activations carry no global scale: its checkpoints stay weight-only.
    if (!o.weight_only && options.scheme == CheckpointScheme::kNvfp4) options.input_amax = std::move(calibration.input_amax);
    options.prequantized = std::move(calibration.weights);
  }
  const auto start = std::chrono::steady_clock::now();
  auto seconds = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
  if (!o.quiet && ::isatty(STDERR_FILENO)) {
    options.on_progress = [&](int done, int total, int64_t bytes, int64_t total_bytes) {
      const double rate = bytes / std::max(seconds(), 1e-9);
      const bool settled = bytes * 100 >= total_bytes;  // the first 1% (a norm or two) says nothing of the rate
      const std::string speed = settled ? fmt::format("{:.0f} MB/s  ETA {:.0f} s", rate / 1e6,
                                                      (total_bytes - bytes) / std::max(rate, 1.0))
                                        : "-- MB/s  ETA --";
      fmt::print(stderr, "\r{}/{} tensors  {:.1f}/{:.1f} MB  {}   ", done, total, bytes / 1e6, total_bytes / 1e6,
                 speed);
    };
  }
  const QuantizeCheckpointReport r = QuantizeCheckpoint(o.in_dir, o.out_dir, options);
  if (options.on_progress) fmt::print(stderr, "\n");
  for (const std::string& w : r.warnings) fmt::print(stderr, "fp4forge: warning: {}\n", w);
  if (!o.quiet) {
    const double s = seconds();
    const std::string what = options.scheme == CheckpointScheme::kMxfp4
                                 ? fmt::format("MXFP4 (W4A16, compressed-tensors{})", calibrated ? ", gptq" : "")
                             : fmt::format("NVFP4 ({}, {}, {} with scale rule {}{})",
                                           options.input_amax.empty() ? "W4A16" : "W4A4", o.format, o.method, o.scale,
                                           calibrated && o.method == "rtn" && o.scale != "amax" ? ", activation-aware" : "");
    fmt::print("{}: {} weights {}, {} tensors kept, {} Linear modules excluded\n"
               "{:.1f} MB -> {:.1f} MB in {:.2f} s ({:.0f} MB/s)\n",
               o.out_dir, r.quantized, what, r.kept, r.excluded_modules.size(), r.bytes_in / 1e6, r.bytes_out / 1e6, s,
               r.bytes_in / 1e6 / std::max(s, 1e-9));
  }
}

}  // namespace

void AddQuantize(CLI::App& app) {
  auto o = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("quantize", "Quantize a Hugging Face checkpoint to NVFP4 or MXFP4: weight-only (W4A16), or W4A4 with "
                                     "activation scales calibrated on a text (--calib)");
  cmd->add_option("IN_DIR", o->in_dir, "Unquantized checkpoint directory (config.json and BF16/FP16/FP32 *.safetensors)")->required()->check(CLI::ExistingDirectory);
  cmd->add_option("OUT_DIR", o->out_dir, "Output directory (must not exist unless --force)")->required();
  cmd->add_option("--format", o->format,
                  "Checkpoint dialect: modelopt (vLLM/SGLang --quantization modelopt_fp4, TensorRT-LLM) or "
                  "compressed-tensors (vLLM, llm-compressor's format)")
      ->capture_default_str();
  cmd->add_option("--scheme", o->scheme, "Number format: nvfp4, or mxfp4 (with --format compressed-tensors)")
      ->capture_default_str();
  cmd->add_option("--scale", o->scale,
                  "NVFP4 block-scale rule: amax (bit-identical to the dialect's own tool: ModelOpt or llm-compressor), "
                  "mse, mse-exhaustive, 4over6, search (mse's block scales at the tensor scale, shared by a fused "
                  "group, of least squared error: 35 candidates from 0.875 to 3 times amax/2688)")
      ->capture_default_str();
  cmd->add_option("--include", o->include, "Also quantize tensors whose name matches this regex (repeatable)")->check(kRegex);
  cmd->add_option("--exclude", o->exclude, "Keep tensors whose name matches this regex in high precision (repeatable)")->check(kRegex);
  cmd->add_option("--calib", o->calib, "Calibration text (UTF-8, tokenized whole with BOS first): writes W4A4, each "
                  "quantized Linear with its input's max |x| on it (ModelOpt input_scale = amax/2688, compressed-tensors "
                  "input_global_scale = 2688/amax), shared by fused layers; every MoE expert runs on every token, so "
                  "none is left without a scale. Use text unlike your evaluation text")->check(CLI::ExistingFile);
  cmd->add_option("--calib-ids", o->calib_ids, "Instead of --calib: a file of token ids (whitespace-separated, as `fp4forge "
                  "tokenize` prints them), used as they are")->excludes("--calib")->check(CLI::ExistingFile);
  cmd->add_option("--method", o->method, "With --calib: rtn (round to nearest; with --scale mse, mse-exhaustive or "
                  "4over6 each block's scale is chosen by the error weighted by its inputs' calibration second "
                  "moments: activation-aware) or gptq (GPTQ on the NVFP4 grid: each 16-block's scale set by --scale "
                  "when reached, rounding errors fed back through the inputs' Hessian)")
      ->check(CLI::IsMember({"rtn", "gptq"}))->capture_default_str();
  cmd->add_flag("--act-order", o->act_order, "GPTQ: quantize columns in order of decreasing input energy");
  cmd->add_flag("--weight-only", o->weight_only, "With --calib: use the calibration for the weights only and write "
                "W4A16 (no input scales)");
  cmd->add_option("--calib-tokens", o->calib_tokens, "Calibrate on the first N tokens of --calib or --calib-ids")
      ->capture_default_str()->check(CLI::Range(int64_t{1}, int64_t{1} << 30));
  cmd->add_option("--calib-ctx", o->calib_ctx, "Calibration window in tokens (at most the model's context)")
      ->capture_default_str()->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  cmd->add_flag("--quantize-lm-head", o->quantize_lm_head, "Quantize lm_head too (kept by default)");
  cmd->add_option("--threads", o->threads, "Threads (0 = all cores); the output does not depend on it")->capture_default_str();
  cmd->add_option("--device", o->device, "Where the weights are quantized: cpu, or cuda (an NVIDIA GPU; NVFP4 amax, mse and "
                  "4over6 in the ModelOpt dialect; the same bytes as on the CPU)")
      ->check(CLI::IsMember({"cpu", "cuda"}))
      ->capture_default_str();
  cmd->add_option("--max-shard-size", o->max_shard_size, "Largest output shard (5GB, 500MB, 2GiB, ...)")
      ->capture_default_str();
  cmd->add_flag("--force", o->force, "Replace OUT_DIR if it exists");
  cmd->add_flag("--quiet", o->quiet, "No progress and no summary");
  cmd->footer("Streams: each tensor is read once, quantized and written, then dropped from the page cache (as "
              "with dd iflag=nocache), so the process stays under twice the largest tensor plus 512 MiB whatever "
              "the model's size. --calib first runs the model over the text a decoder layer at a time: one layer's "
              "weights plus the text's hidden states (tokens x hidden_size float32) in memory.");
  cmd->callback([o] { Run(*o); });
}

}  // namespace fp4forge::cli
