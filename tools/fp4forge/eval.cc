// fp4forge eval MODEL --text FILE: perplexity, and KL divergence against a reference model.
#include <unistd.h>

#include <chrono>
#include <cstdio>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "engine_cli.h"
#include "fp4forge/engine/evaluate.h"

namespace fp4forge::cli {
namespace {

struct Options {
  std::string model, text, token_file, ref;
  int64_t ctx = 512;
  int64_t max_tokens = 0;
  int threads = 0;
  bool json = false;
};

void Run(const Options& o) {
  auto model = LoadModel(o.model, o.threads);
  std::unique_ptr<engine::Model> ref;
  if (!o.ref.empty()) ref = LoadModel(o.ref, o.threads);
  std::vector<int32_t> tokens;
  if (!o.token_file.empty()) {
    tokens = ReadTokenIds(o.token_file);
  } else {
    const engine::Tokenizer tokenizer = LoadTokenizer(o.model, model.get());
    if (model->config().bos_token_id >= 0) tokens.push_back(static_cast<int32_t>(model->config().bos_token_id));
    const std::vector<int32_t> text = tokenizer.Encode(ReadTextFile(o.text));
    tokens.insert(tokens.end(), text.begin(), text.end());
  }

  engine::EvalOptions options;
  options.context = o.ctx;
  options.max_tokens = o.max_tokens;
  const auto start = std::chrono::steady_clock::now();
  auto seconds = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
  if (::isatty(STDERR_FILENO)) {
    options.on_progress = [&](int64_t done, int64_t total) {
      const double rate = done / std::max(seconds(), 1e-9);
      const int width = 30, filled = static_cast<int>(width * done / std::max<int64_t>(total, 1));
      fmt::print(stderr, "\r[{}{}] {}/{} tokens  {:.0f} tok/s  ETA {:.0f} s   ", std::string(filled, '#'),
                 std::string(width - filled, '.'), done, total, rate, (total - done) / std::max(rate, 1e-9));
    };
  }
  const engine::EvalResult r = engine::Evaluate(*model, tokens, options, ref.get());
  if (options.on_progress) fmt::print(stderr, "\n");
  if (o.json) {
    nlohmann::json j{{"model", o.model},         {"weights", model->summary().encodings}, {"ctx", o.ctx},
                     {"tokens", r.tokens},       {"nll", r.nll},
                     {"ppl", r.ppl},             {"seconds", seconds()}};
    if (r.kl) {
      j.update({{"ref", o.ref}, {"kld_mean", r.kl->mean}, {"kld_median", r.kl->median}, {"kld_p99", r.kl->p99},
                {"kld_max", r.kl->max}, {"top1_agree", r.kl->top1_agree}});
    }
    fmt::print("{}\n", j.dump(2));
    return;
  }
  fmt::print("{} ({})\n  tokens scored {}  (windows of {})\n  mean NLL      {:.5f}\n  perplexity    {:.4f}\n", o.model,
             model->summary().encodings, r.tokens, o.ctx, r.nll, r.ppl);
  if (r.kl) {
    fmt::print("  KL divergence vs {}: mean {:.6f}  median {:.6f}  p99 {:.6f}  max {:.6f}\n  top-1 agreement {:.2f}%\n",
               o.ref, r.kl->mean, r.kl->median, r.kl->p99, r.kl->max, 100 * r.kl->top1_agree);
  }
  fmt::print("  {:.1f} s, {:.0f} tokens/s\n", seconds(), r.tokens * (r.kl ? 2 : 1) / std::max(seconds(), 1e-9));
}

}  // namespace

void AddEval(CLI::App& app) {
  auto o = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand(
      "eval", "Perplexity of a checkpoint (original or quantized) on a text, and KL divergence against a reference");
  cmd->add_option("MODEL", o->model, "Checkpoint directory (BF16/FP16/FP32, NVFP4, MXFP4 or FP8)")->required();
  auto* text = cmd->add_option("--text", o->text, "UTF-8 text file, tokenized whole with BOS prepended");
  cmd->add_option("--tokens", o->token_file, "Instead of --text: a file of token ids (whitespace-separated, as "
                  "`fp4forge tokenize` prints them), used as they are")->excludes(text);
  cmd->add_option("--ctx", o->ctx, "Window length in tokens; windows do not overlap, a last partial one is dropped")
      ->capture_default_str()->check(CLI::Range(int64_t{2}, int64_t{1} << 20));
  cmd->add_option("--ref", o->ref, "Reference checkpoint (e.g. the BF16 original): adds KL divergence and top-1 agreement");
  cmd->add_option("--max-tokens", o->max_tokens, "Score only the windows within the first N tokens (0: all)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--threads", o->threads, "Threads (0: all cores)")->check(CLI::NonNegativeNumber);
  cmd->add_flag("--json", o->json, "Print JSON: ppl, nll, tokens and, with --ref, kld_mean, kld_p99, top1_agree, ...");
  cmd->callback([o] {
    if (o->text.empty() && o->token_file.empty()) throw CLI::RequiredError("--text or --tokens");
    Run(*o);
  });
}

}  // namespace fp4forge::cli
