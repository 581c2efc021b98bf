// fp4forge eval: perplexity of a model on a text and, against a reference model, the KL divergence
// of its next-token distributions (the definitions of llama.cpp's llama-perplexity
// --kl-divergence), so that what quantization costs is measured on the user's own model and text.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "fp4forge/engine/model.h"

namespace fp4forge::engine {

struct EvalOptions {
  int64_t context = 512;    // window length N: windows are non-overlapping, a last partial one dropped
  int64_t max_tokens = 0;   // 0: the whole text; else only the windows within the first max_tokens
  std::function<void(int64_t scored, int64_t total)> on_progress;  // after each window
};

struct KlStats {
  double mean = 0, median = 0, p99 = 0, max = 0;  // KL(ref || model) per position, in nats
  double top1_agree = 0;  // share of positions whose most likely token is the same in both
};

struct EvalResult {
  int64_t tokens = 0;  // positions scored: N - 1 per window
  double nll = 0;      // mean negative log-likelihood (nats)
  double ppl = 0;      // exp(nll)
  std::optional<KlStats> kl;
};

// `tokens` is the whole tokenized text (BOS first, if the model has one). Window w is tokens
// [w·N, (w+1)·N); its tokens 1..N-1 are scored given the ones before them in the window. With `ref`,
// both models run on the same windows (their vocabularies must be the same size). Throws
// Error(kInvalidArgument) when the text is shorter than one window or N exceeds either model's
// positions.
EvalResult Evaluate(Model& model, const std::vector<int32_t>& tokens, const EvalOptions& options, Model* ref = nullptr);

}  // namespace fp4forge::engine
