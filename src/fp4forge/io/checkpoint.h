// A Hugging Face checkpoint directory: config.json plus one model.safetensors or shards listed in
// model.safetensors.index.json (whose weight_map is followed, never guessed).
#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "fp4forge/io/safetensors.h"

namespace fp4forge {

struct CheckpointTensor {
  const SafetensorsTensor* tensor;  // owned by the checkpoint's open files
  std::string file;                 // shard file name, relative to the directory
  const SafetensorsFile* source;    // the open shard, for Release()
};

class Checkpoint {
 public:
  // Opens and validates every shard. Throws Error naming the file and tensor: missing config.json
  // or weights, invalid JSON, a shard listed in the index that does not exist, a tensor the index
  // maps to a shard that lacks it, a tensor in two shards.
  explicit Checkpoint(const std::string& dir);

  const std::string& dir() const { return dir_; }
  const nlohmann::json& config() const { return config_; }
  const std::vector<CheckpointTensor>& tensors() const { return tensors_; }  // by shard file, then name
  const SafetensorsTensor* Find(const std::string& name) const;  // nullptr when absent
  // Unmaps a tensor's pages from this process (SafetensorsFile::Release), for callers that stream
  // over the checkpoint; it reads back unchanged on the next access. No-op for an absent name.
  void Release(const std::string& name) const;
  // Every regular file of the directory that is not a weight shard or the index (tokenizer, chat
  // template, generation config, ...), relative names.
  const std::vector<std::string>& other_files() const { return other_files_; }
  int64_t weight_bytes() const;

 private:
  std::string dir_;
  nlohmann::json config_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::vector<CheckpointTensor> tensors_;
  std::unordered_map<std::string, size_t> by_name_;  // index into tensors_
  std::vector<std::string> other_files_;
};

}  // namespace fp4forge
