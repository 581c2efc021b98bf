// The engine against transformers: every supported fixture of tests/fixtures/ (goldens computed by
// transformers in float32 from the same BF16 weights, scripts/models/make_fixtures.py).
#include "fp4forge/engine/model.h"

#include <map>
#include <random>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <vector>

#include <gtest/gtest.h>

#include "fp4forge/base/error.h"
#include "fp4forge/engine/calibrate.h"
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

std::vector<int32_t> RandomTokens(int64_t n, int64_t vocab) {
  std::mt19937 rng(7);
  std::vector<int32_t> tokens(n);
  for (int32_t& t : tokens) t = static_cast<int32_t>(rng() % vocab);
  return tokens;
}

// Calibration runs every window through one layer before the next; the amax it records must be what
// the ordinary forward pass, window by window, feeds each Linear (the same arithmetic, so exactly).
TEST(Calibrate, LayerByLayerSeesWhatTheForwardPassFeeds) {
  for (const char* name : {"llama3", "phi3", "qwen3_moe"}) {
    SCOPED_TRACE(name);
    Model model(kFixtures + name, 2);
    const ModelConfig& c = model.config();
    const int64_t ctx = 24;
    const std::vector<int32_t> tokens = RandomTokens(2 * ctx + 5, c.vocab_size);  // a last, shorter window
    // Hessians checked as they are handed over, against the inputs the forward pass feeds (below).
    std::map<std::string, std::vector<float>> hessians;
    std::map<std::string, const void*> shared;  // which Hessian each module was handed
    const std::map<std::string, InputStats> stats = CalibrateInputs(
        model, tokens,
        {.context = ctx, .second_moments = true, .hessians = true, .on_layer = [&](int64_t layer, const auto& all) {
           for (const auto& [module, s] : all) {
             if (s.layer == layer) {
               hessians[module] = *s.hessian;
               shared[module] = s.hessian.get();
             }
           }
         }, .on_progress = {}});
    std::map<std::string, float> amax;
    for (const auto& [module, s] : stats) amax[module] = s.amax;

    std::map<std::string, float> seen;
    std::map<std::string, std::vector<float>> inputs;  // every row each Linear was fed
    model.Observe([&](const Linear& l, const float* x, int64_t rows) {
      float& a = seen[l.module];
      for (int64_t i = 0; i < rows * l.weight.cols; ++i) a = std::max(a, std::fabs(x[i]));
      inputs[l.module].insert(inputs[l.module].end(), x, x + rows * l.weight.cols);
    }, /*all_experts=*/true);
    std::vector<float> logits(ctx * c.vocab_size);
    for (size_t w = 0; w < tokens.size(); w += ctx) {
      KVCache cache = model.NewCache(ctx);
      const size_t n = std::min<size_t>(ctx, tokens.size() - w);
      model.Forward(std::span<const int32_t>(tokens.data() + w, n), 0, cache, true, logits.data());
    }
    model.Observe({}, false);
    EXPECT_EQ(amax, seen);
    // One Hessian per input: q/k/v share theirs, and so do the gate and up projections of all experts.
    const std::string l0 = "model.layers.0.";
    if (!c.fused_qkv) {
      EXPECT_EQ(shared.at(l0 + "self_attn.q_proj"), shared.at(l0 + "self_attn.v_proj"));
      EXPECT_NE(shared.at(l0 + "self_attn.q_proj"), shared.at(l0 + "self_attn.o_proj"));
    }
    int64_t moe_layer = 0;
    while (moe_layer < c.num_layers && !c.moe_layer[moe_layer]) ++moe_layer;
    if (moe_layer < c.num_layers) {
      const std::string e = fmt::format("model.layers.{}.{}.", moe_layer, c.experts_prefix);
      EXPECT_EQ(shared.at(e + "0." + c.expert_projections[0]), shared.at(e + "1." + c.expert_projections[1]));
      EXPECT_NE(shared.at(e + "0." + c.expert_projections[2]), shared.at(e + "1." + c.expert_projections[2]));
    }
    // X^T X and its diagonal, against double sums of the same rows: float32 accumulation over ~50
    // rows, a few ulps of the largest entry of its row.
    for (const auto& [module, x] : inputs) {
      if (module == "lm_head") continue;  // observed by calibration without running it: seen above
      const int64_t k = stats.at(module).linear->weight.cols, rows = static_cast<int64_t>(x.size()) / k;
      ASSERT_EQ(stats.at(module).rows, rows) << module;
      const std::vector<float>& h = hessians.at(module);
      for (int64_t i = 0; i < k; ++i) {
        const double diag = stats.at(module).second_moments[i];
        for (int64_t j = 0; j < k; ++j) {
          double expect = 0;
          for (int64_t r = 0; r < rows; ++r) expect += double{x[r * k + i]} * x[r * k + j];
          EXPECT_NEAR(h[i * k + j], expect, 1e-5 * diag + 1e-30) << module << " " << i << "," << j;
          if (i == j) {
            EXPECT_NEAR(diag, expect, 1e-9 * expect) << module;
          }
        }
      }
    }
    int64_t experts = 0;
    for (const auto& [module, a] : amax) {
      EXPECT_GT(a, 0.0f) << module;
      experts += module.find(".experts.") != std::string::npos;
    }
    // Every expert's gate, up and down projection, routed to or not.
    EXPECT_EQ(experts, c.num_experts * 3 * std::count(c.moe_layer.begin(), c.moe_layer.end(), true));
  }
}

// Running every expert on every token changes what the observer sees, not the layer's output.
TEST(Calibrate, AllExpertsLeaveTheOutputAsRouted) {
  Model model(kFixtures + "qwen3_moe", 1);
  const int64_t vocab = model.config().vocab_size, n = 16;
  const std::vector<int32_t> tokens = RandomTokens(n, vocab);
  std::vector<float> routed(n * vocab), all(n * vocab);
  KVCache cache = model.NewCache(n);
  model.Forward(tokens, 0, cache, true, routed.data());
  model.Observe([](const Linear&, const float*, int64_t) {}, /*all_experts=*/true);
  model.Forward(tokens, 0, cache, true, all.data());
  // The experts' products run on more rows at once: float32 sums in another order, a few ulps.
  float max_logit = 0, max_error = 0;
  for (int64_t i = 0; i < n * vocab; ++i) {
    max_logit = std::max(max_logit, std::fabs(routed[i]));
    max_error = std::max(max_error, std::fabs(routed[i] - all[i]));
  }
  EXPECT_LE(max_error, 1e-5f * max_logit);
}

TEST(Calibrate, RefusesNoTokens) {  // a quantized model's refusal: tests/calibration_test.py
  Model model(kFixtures + "llama3", 1);
  try {
    CalibrateInputs(model, {}, {});
    ADD_FAILURE() << "calibrated on no tokens";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
  }
}

}  // namespace
}  // namespace fp4forge::engine
