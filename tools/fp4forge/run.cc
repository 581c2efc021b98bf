// fp4forge run MODEL -p PROMPT: generate a continuation, streamed to stdout.
#include <chrono>
#include <cstdio>
#include <random>

#include <fmt/format.h>

#include "commands.h"
#include "engine_cli.h"
#include "fp4forge/base/error.h"
#include "fp4forge/engine/sampler.h"

namespace fp4forge::cli {
namespace {

struct Options {
  std::string model, prompt;
  int64_t n = 128;
  engine::SamplingOptions sampling;
  uint64_t seed = 0;
  int threads = 0;
};

// Bytes at the end of `s` that start a UTF-8 character not yet complete (held back while streaming).
size_t IncompleteTail(const std::string& s) {
  for (size_t back = 1; back <= std::min<size_t>(3, s.size()); ++back) {
    const auto c = static_cast<unsigned char>(s[s.size() - back]);
    if ((c & 0xC0) == 0x80) continue;  // a continuation byte: look further back
    const size_t length = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    return length > back ? back : 0;
  }
  return 0;
}

void Run(const Options& o) {
  using Clock = std::chrono::steady_clock;
  const auto load_start = Clock::now();
  auto model = LoadModel(o.model, o.threads);
  const engine::Tokenizer tokenizer = LoadTokenizer(o.model, model.get());
  const engine::ModelConfig& c = model->config();
  std::vector<int32_t> tokens;
  if (c.bos_token_id >= 0) tokens.push_back(static_cast<int32_t>(c.bos_token_id));
  const std::vector<int32_t> prompt = tokenizer.Encode(o.prompt);
  tokens.insert(tokens.end(), prompt.begin(), prompt.end());
  const int64_t prompt_tokens = static_cast<int64_t>(tokens.size());
  if (prompt_tokens >= c.max_positions) {
    Fail(ErrorCode::kInvalidArgument, "[run] got a prompt of {} tokens, expected fewer than the model's context of {}",
         prompt_tokens, c.max_positions);
  }
  const int64_t n = std::min(o.n, c.max_positions - prompt_tokens);
  if (n < o.n) fmt::print(stderr, "fp4forge: warning: -n {} cut to {}: the model's context is {} tokens\n", o.n, n, c.max_positions);
  const double load_seconds = std::chrono::duration<double>(Clock::now() - load_start).count();

  engine::KVCache cache = model->NewCache(prompt_tokens + n);
  std::vector<float> logits(c.vocab_size);
  std::mt19937_64 rng(o.seed);
  const auto prefill_start = Clock::now();
  model->Forward(tokens, 0, cache, false, logits.data());
  const auto decode_start = Clock::now();
  std::vector<int32_t> generated;
  std::string printed;
  for (int64_t i = 0; i < n; ++i) {
    const int32_t next = engine::SampleToken(logits.data(), c.vocab_size, o.sampling, rng);
    if (std::find(c.eos_token_ids.begin(), c.eos_token_ids.end(), next) != c.eos_token_ids.end()) break;
    generated.push_back(next);
    const std::string text = tokenizer.Decode(generated);
    const size_t ready = text.size() - IncompleteTail(text);
    if (ready > printed.size() && text.compare(0, printed.size(), printed) == 0) {
      fmt::print("{}", text.substr(printed.size(), ready - printed.size()));
      std::fflush(stdout);
      printed = text.substr(0, ready);
    }
    if (i + 1 < n) model->Forward(std::span<const int32_t>(&generated.back(), 1), prompt_tokens + i, cache, false, logits.data());
  }
  const auto end = Clock::now();
  fmt::print("\n");
  std::fflush(stdout);  // the continuation before the figures on stderr
  const double prefill = std::chrono::duration<double>(decode_start - prefill_start).count();
  const double decode = std::chrono::duration<double>(end - decode_start).count();
  const auto decoded = static_cast<double>(std::max<int64_t>(0, static_cast<int64_t>(generated.size()) - 1));
  fmt::print(stderr, "fp4forge: {} ({}), load {:.2f} s; prefill {} tokens {:.1f} tok/s; decode {} tokens {:.1f} tok/s\n",
             o.model, model->summary().encodings, load_seconds, prompt_tokens, prompt_tokens / std::max(prefill, 1e-9),
             generated.size(), decoded / std::max(decode, 1e-9));
}

}  // namespace

void AddRun(CLI::App& app) {
  auto o = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("run", "Generate text with a checkpoint on the CPU, streamed to stdout");
  cmd->add_option("MODEL", o->model, "Checkpoint directory (BF16/FP16/FP32, NVFP4, MXFP4 or FP8)")->required();
  cmd->add_option("-p,--prompt", o->prompt, "Prompt text (BOS is prepended)")->required();
  cmd->add_option("-n", o->n, "Tokens to generate at most (stops early at end of text)")->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 24));
  cmd->add_option("--temperature", o->sampling.temperature, "0: greedy")->capture_default_str()->check(CLI::Range(0.0, 100.0));
  cmd->add_option("--top-p", o->sampling.top_p, "Nucleus sampling mass")->capture_default_str()->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--top-k", o->sampling.top_k, "Sample among the k most likely tokens (0: all)")->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--seed", o->seed, "Random seed for sampling")->capture_default_str();
  cmd->add_option("--threads", o->threads, "Threads (0: all cores)")->check(CLI::NonNegativeNumber);
  cmd->callback([o] { Run(*o); });
}

}  // namespace fp4forge::cli
