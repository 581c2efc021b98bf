// Which tensors of each fixture family are quantized, kept, or kept-and-listed as excluded.
#include "fp4forge/io/hf_names.h"

#include <filesystem>
#include <map>
#include <set>

#include <gtest/gtest.h>

#include "fp4forge/io/checkpoint.h"

namespace fp4forge {
namespace {

TEST(HfNames, ClassifiesEveryFixtureFamily) {
  const std::filesystem::path fixtures = std::filesystem::path(FP4FORGE_SOURCE_DIR) / "tests" / "fixtures";
  // Quantized weights per fixture: 2 layers x (attention + MLP or experts). DeepSeek: 5 MLA
  // projections per layer, a dense MLP in layer 0, 4 routed + 1 shared expert in layer 1. gpt-oss:
  // 4 attention projections and the two 3-D expert tensors per layer.
  const std::map<std::string, int> expected_quantized = {
      {"llama3", 14}, {"mistral", 14}, {"qwen2_5", 14}, {"qwen3", 14}, {"qwen3_moe", 32}, {"mixtral", 32},
      {"deepseek_v3", 28}, {"phi3", 8}, {"gpt_oss", 12}};
  for (const auto& [fixture, count] : expected_quantized) {
    const Checkpoint c((fixtures / fixture).string());
    int quantized = 0;
    std::set<std::string> kept_linears;
    for (const CheckpointTensor& t : c.tensors()) {
      const LinearVerdict v = ClassifyTensor(t.tensor->name, t.tensor->shape.size(), {});
      quantized += v == LinearVerdict::kQuantize;
      if (v == LinearVerdict::kKeepLinear) kept_linears.insert(ModuleName(t.tensor->name));
      EXPECT_FALSE(v == LinearVerdict::kQuantize && (t.tensor->name.find("norm") != std::string::npos ||
                                                    t.tensor->name.find("embed") != std::string::npos))
          << t.tensor->name;
    }
    EXPECT_EQ(quantized, count) << fixture;
    EXPECT_TRUE(kept_linears.contains("lm_head")) << fixture;
  }
}

TEST(HfNames, KeepsRoutersAndHonoursIncludeExclude) {
  EXPECT_EQ(ClassifyTensor("model.layers.1.mlp.gate.weight", 2, {}), LinearVerdict::kKeepLinear);
  EXPECT_EQ(ClassifyTensor("model.layers.1.block_sparse_moe.gate.weight", 2, {}), LinearVerdict::kKeepLinear);
  EXPECT_EQ(ClassifyTensor("model.layers.1.mlp.router.weight", 2, {}), LinearVerdict::kKeepLinear);
  EXPECT_EQ(ClassifyTensor("model.layers.1.mlp.gate_proj.weight", 2, {}), LinearVerdict::kQuantize);
  EXPECT_EQ(ClassifyTensor("model.layers.1.self_attn.q_proj.bias", 1, {}), LinearVerdict::kKeep);
  EXPECT_EQ(ClassifyTensor("model.visual.blocks.0.mlp.fc1.weight", 2, {}), LinearVerdict::kKeepLinear);
  QuantizationSelection with_head;
  with_head.quantize_lm_head = true;
  EXPECT_EQ(ClassifyTensor("lm_head.weight", 2, with_head), LinearVerdict::kQuantize);
  const QuantizationSelection s{.include = {Regex("embed_tokens", "test")}, .exclude = {Regex("layers\\.0\\.", "test")}};
  EXPECT_EQ(ClassifyTensor("model.embed_tokens.weight", 2, s), LinearVerdict::kQuantize);
  EXPECT_EQ(ClassifyTensor("model.layers.0.mlp.up_proj.weight", 2, s), LinearVerdict::kKeepLinear);
}

TEST(HfNames, GroupsFusedSiblings) {
  EXPECT_EQ(FusedGroupKey("model.layers.3.self_attn.k_proj.weight"), "model.layers.3.self_attn.{q,k,v}_proj");
  EXPECT_EQ(FusedGroupKey("model.layers.3.self_attn.v_proj.weight"), FusedGroupKey("model.layers.3.self_attn.q_proj.weight"));
  EXPECT_NE(FusedGroupKey("model.layers.3.self_attn.q_proj.weight"), FusedGroupKey("model.layers.4.self_attn.q_proj.weight"));
  EXPECT_EQ(FusedGroupKey("model.layers.1.mlp.experts.2.up_proj.weight"), "model.layers.1.mlp.experts.2.{gate,up}_proj");
  EXPECT_EQ(FusedExpertsModule("model.layers.1.mlp.experts.gate_up_proj", 3), "model.layers.1.mlp.experts");
  EXPECT_EQ(FusedExpertsModule("model.layers.1.mlp.experts.gate_up_proj_bias", 2), std::nullopt);
  EXPECT_EQ(FusedExpertsModule("model.layers.1.mlp.experts.2.up_proj.weight", 2), std::nullopt);
  EXPECT_EQ(FusedGroupKey("model.layers.1.block_sparse_moe.experts.0.w3.weight"),
            "model.layers.1.block_sparse_moe.experts.0.{w1,w3}");
  EXPECT_EQ(FusedGroupKey("model.layers.1.self_attn.kv_a_proj_with_mqa.weight"),
            "model.layers.1.self_attn.{q_a_proj,kv_a_proj_with_mqa}");
  EXPECT_FALSE(FusedGroupKey("model.layers.1.self_attn.o_proj.weight"));
  EXPECT_FALSE(FusedGroupKey("model.layers.1.mlp.down_proj.weight"));
}

}  // namespace
}  // namespace fp4forge
