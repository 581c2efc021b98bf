#include "fp4forge/engine/evaluate.h"

#include <algorithm>
#include <cmath>

#include "fp4forge/base/error.h"

namespace fp4forge::engine {
namespace {

// log-softmax of one row of logits into out (double: sums over 10^5 terms).
void LogSoftmax(const float* logits, int64_t vocab, std::vector<double>& out) {
  out.resize(vocab);
  const float max_logit = *std::max_element(logits, logits + vocab);
  double sum = 0;
  for (int64_t i = 0; i < vocab; ++i) sum += std::exp(static_cast<double>(logits[i]) - max_logit);
  const double log_sum = std::log(sum) + max_logit;
  for (int64_t i = 0; i < vocab; ++i) out[i] = logits[i] - log_sum;
}

void CheckContext(const Model& m, int64_t context, const char* which) {
  if (context > m.config().max_positions) {
    Fail(ErrorCode::kInvalidArgument, "[eval] got --ctx {}, expected at most the {} model's max_position_embeddings {}",
         context, which, m.config().max_positions);
  }
}

}  // namespace

EvalResult Evaluate(Model& model, const std::vector<int32_t>& tokens, const EvalOptions& options, Model* ref) {
  const int64_t n = options.context;
  if (n < 2) Fail(ErrorCode::kInvalidArgument, "[eval] got --ctx {}, expected at least 2", n);
  CheckContext(model, n, "evaluated");
  const int64_t vocab = model.config().vocab_size;
  if (ref) {
    CheckContext(*ref, n, "reference");
    if (ref->config().vocab_size != vocab) {
      Fail(ErrorCode::kInvalidArgument, "[eval] got a reference vocabulary of {}, expected the model's {}",
           ref->config().vocab_size, vocab);
    }
  }
  const int64_t usable = options.max_tokens > 0 ? std::min<int64_t>(options.max_tokens, tokens.size()) : tokens.size();
  const int64_t windows = usable / n;
  if (windows == 0) {
    Fail(ErrorCode::kInvalidArgument, "[eval] got a text of {} tokens, expected at least one window of --ctx {}",
         usable, n);
  }
  KVCache cache = model.NewCache(n);
  std::optional<KVCache> ref_cache;
  if (ref) ref_cache = ref->NewCache(n);
  std::vector<float> logits(n * vocab), ref_logits(ref ? n * vocab : 0);
  std::vector<double> logp, ref_logp, kl;
  double nll_sum = 0;
  int64_t agree = 0, scored = 0;
  for (int64_t w = 0; w < windows; ++w) {
    const std::span<const int32_t> window(tokens.data() + w * n, n);
    model.Forward(window, 0, cache, true, logits.data());
    if (ref) ref->Forward(window, 0, *ref_cache, true, ref_logits.data());
    for (int64_t i = 0; i + 1 < n; ++i) {
      LogSoftmax(logits.data() + i * vocab, vocab, logp);
      nll_sum -= logp[window[i + 1]];
      if (ref) {
        LogSoftmax(ref_logits.data() + i * vocab, vocab, ref_logp);
        double d = 0;
        for (int64_t t = 0; t < vocab; ++t) d += std::exp(ref_logp[t]) * (ref_logp[t] - logp[t]);
        kl.push_back(std::max(0.0, d));
        agree += std::max_element(logp.begin(), logp.end()) - logp.begin() ==
                 std::max_element(ref_logp.begin(), ref_logp.end()) - ref_logp.begin();
      }
      ++scored;
    }
    if (options.on_progress) options.on_progress(scored, windows * (n - 1));
  }
  EvalResult r;
  r.tokens = scored;
  r.nll = nll_sum / static_cast<double>(scored);
  r.ppl = std::exp(r.nll);
  if (ref) {
    KlStats s;
    for (double d : kl) s.mean += d;
    s.mean /= static_cast<double>(kl.size());
    std::sort(kl.begin(), kl.end());
    s.median = kl[kl.size() / 2];
    s.p99 = kl[std::min(kl.size() - 1, static_cast<size_t>(0.99 * static_cast<double>(kl.size())))];
    s.max = kl.back();
    s.top1_agree = static_cast<double>(agree) / static_cast<double>(scored);
    r.kl = s;
  }
  return r;
}

}  // namespace fp4forge::engine
