// Picking the next token from logits: greedy at temperature 0, else temperature, top-k and top-p
// (nucleus) filtering as transformers' sampling applies them, with a seeded generator.
#pragma once

#include <cstdint>
#include <random>

namespace fp4forge::engine {

struct SamplingOptions {
  float temperature = 0.0f;  // 0: the most likely token
  int64_t top_k = 0;         // 0: no limit
  float top_p = 1.0f;        // 1: no limit
};

// The sampled token id; `logits` has `vocab` entries.
int32_t SampleToken(const float* logits, int64_t vocab, const SamplingOptions& options, std::mt19937_64& rng);

}  // namespace fp4forge::engine
