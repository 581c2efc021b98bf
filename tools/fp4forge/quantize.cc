// fp4forge quantize IN_DIR OUT_DIR: a Hugging Face checkpoint to NVFP4.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "commands.h"
#include "fp4forge/base/error.h"
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
};

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
    const std::string what = options.scheme == CheckpointScheme::kMxfp4 ? "MXFP4 (W4A16, compressed-tensors)"
                             : fmt::format("NVFP4 (W4A16, {}, scale rule {})", o.format, o.scale);
    fmt::print("{}: {} weights {}, {} tensors kept, {} Linear modules excluded\n"
               "{:.1f} MB -> {:.1f} MB in {:.2f} s ({:.0f} MB/s)\n",
               o.out_dir, r.quantized, what, r.kept, r.excluded_modules.size(), r.bytes_in / 1e6, r.bytes_out / 1e6, s,
               r.bytes_in / 1e6 / std::max(s, 1e-9));
  }
}

}  // namespace

void AddQuantize(CLI::App& app) {
  auto o = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("quantize", "Quantize a Hugging Face checkpoint to NVFP4 or MXFP4 (weight-only, W4A16)");
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
              "the model's size.");
  cmd->callback([o] { Run(*o); });
}

}  // namespace fp4forge::cli
