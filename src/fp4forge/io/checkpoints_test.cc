// The project's committed checkpoints (models/default, tests/fixtures) open with our reader and have
// the shapes the issues promise; fixture indexes point at tensors that exist.
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <unistd.h>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "fp4forge/base/error.h"
#include "fp4forge/io/checkpoint.h"
#include "fp4forge/io/safetensors.h"

namespace fp4forge {
namespace {

const std::filesystem::path kRoot = FP4FORGE_SOURCE_DIR;

std::map<std::string, SafetensorsTensor> ReadAll(const std::filesystem::path& dir,
                                                 std::vector<std::unique_ptr<SafetensorsFile>>& files) {
  std::map<std::string, SafetensorsTensor> tensors;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (!name.starts_with("model") || entry.path().extension() != ".safetensors") continue;
    files.push_back(std::make_unique<SafetensorsFile>(entry.path().string()));
    for (const SafetensorsTensor& t : files.back()->tensors()) tensors[t.name] = t;
  }
  return tensors;
}

TEST(Checkpoints, DefaultModelIsASmallUntiedGqaLlama) {
  const std::filesystem::path dir = kRoot / "models" / "default";
  EXPECT_LE(std::filesystem::file_size(dir / "model.safetensors"), 16u << 20);
  std::vector<std::unique_ptr<SafetensorsFile>> files;
  const auto tensors = ReadAll(dir, files);
  ASSERT_TRUE(tensors.contains("lm_head.weight"));
  ASSERT_TRUE(tensors.contains("model.embed_tokens.weight"));
  EXPECT_NE(tensors.at("lm_head.weight").data, tensors.at("model.embed_tokens.weight").data);
  int linears = 0;
  for (const auto& [name, t] : tensors) {
    EXPECT_EQ(t.dtype, "BF16") << name;
    if (t.shape.size() == 2 && name != "model.embed_tokens.weight") {
      EXPECT_EQ(t.shape[1] % 64, 0) << name << " input dimension";
      ++linears;
    }
  }
  EXPECT_EQ(linears, 6 * 7 + 1);
  // Grouped-query attention: fewer key/value heads than query heads.
  EXPECT_LT(tensors.at("model.layers.0.self_attn.k_proj.weight").shape[0],
            tensors.at("model.layers.0.self_attn.q_proj.weight").shape[0]);
}

TEST(Checkpoints, EveryFixtureOpensWithItsGoldens) {
  int fixtures = 0, sharded = 0;
  for (const auto& entry : std::filesystem::directory_iterator(kRoot / "tests" / "fixtures")) {
    if (!entry.is_directory()) continue;
    SCOPED_TRACE(entry.path().string());
    ++fixtures;
    std::vector<std::unique_ptr<SafetensorsFile>> files;
    const auto tensors = ReadAll(entry.path(), files);
    EXPECT_GT(tensors.size(), 10u);
    const std::filesystem::path index = entry.path() / "model.safetensors.index.json";
    if (std::filesystem::exists(index)) {
      ++sharded;
      EXPECT_GT(files.size(), 1u);
      const nlohmann::json json = nlohmann::json::parse(std::ifstream(index));
      EXPECT_EQ(json.at("weight_map").size(), tensors.size());
      for (const auto& [name, shard] : json.at("weight_map").items()) {
        EXPECT_TRUE(std::filesystem::exists(entry.path() / shard.get<std::string>())) << shard;
        EXPECT_TRUE(tensors.contains(name)) << name;
      }
    }
    const SafetensorsFile golden((entry.path() / "golden.safetensors").string());
    std::map<std::string, const SafetensorsTensor*> g;
    for (const SafetensorsTensor& t : golden.tensors()) g[t.name] = &t;
    ASSERT_TRUE(g.contains("logits") && g.contains("greedy") && g.contains("input_ids"));
    EXPECT_EQ(g["logits"]->dtype, "F32");
    EXPECT_EQ(g["logits"]->shape, (std::vector<int64_t>{8, 256}));
    EXPECT_EQ(g["greedy"]->shape, (std::vector<int64_t>{1, 16}));
  }
  EXPECT_EQ(fixtures, 9);
  EXPECT_GE(sharded, 1);
}

TEST(Checkpoints, ShardedFixtureOpensThroughItsIndex) {
  const Checkpoint c((kRoot / "tests" / "fixtures" / "qwen3_moe").string());
  EXPECT_EQ(c.config().at("model_type"), "qwen3_moe");
  EXPECT_EQ(c.tensors().size(), 45u);
  std::set<std::string> files;
  for (const CheckpointTensor& t : c.tensors()) files.insert(t.file);
  EXPECT_EQ(files.size(), 2u);
  EXPECT_EQ(c.other_files(), (std::vector<std::string>{"config.json", "generation_config.json", "golden.safetensors"}));
}

// Resident file-backed memory of this process (RssFile of /proc/self/status), in KiB.
int64_t ResidentFileKiB() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.starts_with("RssFile:")) return std::stoll(line.substr(8));
  }
  return -1;
}

TEST(Checkpoints, ReleaseUnmapsATensorWhichReadsBackUnchanged) {
  const Checkpoint c((kRoot / "models" / "default").string());
  std::map<std::string, std::string> bytes;
  const int64_t before = ResidentFileKiB();
  for (const CheckpointTensor& t : c.tensors()) {
    bytes[t.tensor->name].assign(reinterpret_cast<const char*>(t.tensor->data), t.tensor->num_bytes);
  }
  const int64_t touched = ResidentFileKiB();
  EXPECT_GT(touched - before, 12 << 10) << "reading the 13.6 MB model maps its pages";
  for (const CheckpointTensor& t : c.tensors()) c.Release(t.tensor->name);
  c.Release("no.such.tensor");  // a no-op
  EXPECT_LT(ResidentFileKiB() - before, 1 << 10) << "released pages stay mapped";
  for (const CheckpointTensor& t : c.tensors()) {
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(t.tensor->data), t.tensor->num_bytes), bytes[t.tensor->name])
        << t.tensor->name;
  }
}

TEST(Checkpoints, RejectsMissingShardsAndLyingIndexes) {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / ("fp4forge_ckpt_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::copy(kRoot / "tests" / "fixtures" / "qwen3_moe", dir);
  auto expect_error = [&](const std::string& fragment) {
    try {
      Checkpoint c(dir.string());
      ADD_FAILURE() << "accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
  };
  std::filesystem::remove(dir / "model-00002-of-00002.safetensors");
  expect_error("model-00002-of-00002.safetensors");
  std::filesystem::copy(kRoot / "tests" / "fixtures" / "qwen3_moe" / "model-00002-of-00002.safetensors", dir);
  nlohmann::json index = nlohmann::json::parse(std::ifstream(dir / "model.safetensors.index.json"));
  index["weight_map"]["model.norm.weight"] = index["weight_map"]["model.norm.weight"] == "model-00001-of-00002.safetensors"
                                                 ? "model-00002-of-00002.safetensors"
                                                 : "model-00001-of-00002.safetensors";
  std::ofstream(dir / "model.safetensors.index.json") << index.dump();
  expect_error("model.norm.weight");
  for (const char* outside : {"../model-00001-of-00002.safetensors", "/etc/passwd", ".."}) {
    index["weight_map"]["model.norm.weight"] = outside;
    std::ofstream(dir / "model.safetensors.index.json") << index.dump();
    expect_error("expected the name of a shard file");
  }
  std::filesystem::remove(dir / "config.json");
  expect_error("config.json");
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace fp4forge
