// The engine against transformers: every supported fixture of tests/fixtures/ (goldens computed by
// transformers in float32 from the same BF16 weights, scripts/models/make_fixtures.py).
#include "fp4forge/engine/model.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <vector>

#include <gtest/gtest.h>

#include "fp4forge/base/error.h"
#include "fp4forge/io/safetensors.h"

namespace fp4forge::engine {
namespace {

const std::string kFixtures = std::string(FP4FORGE_SOURCE_DIR) + "/tests/fixtures/";

struct Golden {
  std::vector<int32_t> prompt, greedy;
  std::vector<float> logits;  // [prompt, vocab]
};

std::vector<int32_t> ReadI64(const SafetensorsTensor& t) {
  std::vector<int32_t> out(t.NumElements());
  for (size_t i = 0; i < out.size(); ++i) {
    int64_t v;
    std::memcpy(&v, t.data + 8 * i, 8);
    out[i] = static_cast<int32_t>(v);
  }
  return out;
}

Golden ReadGolden(const std::string& dir) {
  const SafetensorsFile file(dir + "/golden.safetensors");
  Golden g;
  for (const SafetensorsTensor& t : file.tensors()) {
    if (t.name == "input_ids") g.prompt = ReadI64(t);
    if (t.name == "greedy") g.greedy = ReadI64(t);
    if (t.name == "logits") {
      g.logits.resize(t.NumElements());
      std::memcpy(g.logits.data(), t.data, t.num_bytes);
    }
  }
  return g;
}

// Logits of the prompt, then greedy continuation one token at a time through the KV cache.
void ExpectMatchesTransformers(const std::string& name, int threads) {
  SCOPED_TRACE(name);
  Model model(kFixtures + name, threads);
  const Golden g = ReadGolden(kFixtures + name);
  const int64_t vocab = model.config().vocab_size;
  const int64_t n = static_cast<int64_t>(g.prompt.size());
  KVCache cache = model.NewCache(static_cast<int64_t>(g.greedy.size()));
  std::vector<float> logits(n * vocab);
  model.Forward(g.prompt, 0, cache, true, logits.data());
  // Float32 throughout on both sides, summed in different orders over K <= 128: a few ulps of the
  // largest intermediate. 1e-3 × max |logit| is the bound the engine issue sets; we measure ~1e-6.
  float max_logit = 0, max_error = 0;
  for (size_t i = 0; i < logits.size(); ++i) {
    max_logit = std::max(max_logit, std::fabs(g.logits[i]));
    max_error = std::max(max_error, std::fabs(g.logits[i] - logits[i]));
  }
  EXPECT_LE(max_error, 1e-3f * max_logit) << "max |logit| " << max_logit;
  std::printf("%-10s max |logit error| = %.2e x max |logit|\n", name.c_str(), max_error / max_logit);
  std::vector<int32_t> tokens = g.prompt;
  std::vector<float> last(vocab);
  for (size_t step = 0; tokens.size() < g.greedy.size(); ++step) {
    const float* row = step == 0 ? logits.data() + (n - 1) * vocab : last.data();
    tokens.push_back(static_cast<int32_t>(std::max_element(row, row + vocab) - row));
    if (tokens.size() == g.greedy.size()) break;
    model.Forward(std::span<const int32_t>(&tokens.back(), 1), static_cast<int64_t>(tokens.size()) - 1, cache, false,
                  last.data());
  }
  EXPECT_EQ(tokens, g.greedy);
}

TEST(Model, FixturesMatchTransformers) {
  for (const char* name : {"llama3", "mistral", "qwen2_5", "qwen3", "phi3", "mixtral", "qwen3_moe"}) {
    ExpectMatchesTransformers(name, 1);
  }
}

TEST(Model, ThreadCountDoesNotChangeLogits) {
  const Golden g = ReadGolden(kFixtures + "qwen3_moe");
  std::vector<std::vector<float>> results;
  for (int threads : {1, 3}) {
    Model model(kFixtures + "qwen3_moe", threads);
    KVCache cache = model.NewCache(8);
    results.emplace_back(8 * model.config().vocab_size);
    model.Forward(g.prompt, 0, cache, true, results.back().data());
  }
  EXPECT_EQ(results[0], results[1]);
}

TEST(Model, RefusesUnsupportedFamiliesByName) {
  for (const char* name : {"gpt_oss", "deepseek_v3"}) {
    try {
      Model model(kFixtures + name, 1);
      ADD_FAILURE() << name << " loaded";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kUnsupported);
      EXPECT_NE(std::string(e.what()).find("model_type"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace fp4forge::engine
