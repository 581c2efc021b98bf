#include "fp4forge/io/checkpoint.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

#include "fp4forge/base/error.h"
#include "fp4forge/io/files.h"
#include "fp4forge/io/json.h"

namespace fp4forge {

namespace {

nlohmann::json ReadJson(const std::filesystem::path& path) {
  nlohmann::json json = ParseUntrustedJson(ReadRegularFile(path, "[checkpoint]"), "[checkpoint] '" + path.string() + "'");
  if (!json.is_object()) {
    Fail(ErrorCode::kInvalidData, "[checkpoint] '{}' is not a JSON object", path.string());
  }
  return json;
}

constexpr const char* kIndex = "model.safetensors.index.json";

}  // namespace

Checkpoint::Checkpoint(const std::string& dir) : dir_(dir) {
  const std::filesystem::path root(dir);
  std::error_code not_a_directory;
  if (!std::filesystem::is_directory(root, not_a_directory)) Fail(ErrorCode::kIo, "[checkpoint] '{}' is not a directory", dir);
  config_ = ReadJson(root / "config.json");

  std::map<std::string, std::vector<std::string>> names_by_file;  // from the index, when sharded
  std::vector<std::string> shard_files;
  if (PathExists(root / kIndex)) {
    const nlohmann::json index = ReadJson(root / kIndex);
    if (!index.contains("weight_map") || !index["weight_map"].is_object()) {
      Fail(ErrorCode::kInvalidData, "[checkpoint] '{}' has no weight_map object", (root / kIndex).string());
    }
    for (const auto& [name, file] : index["weight_map"].items()) {
      // Shards lie beside the index: a path could make us read (and copy into our output) any file.
      const std::string shard = file.is_string() ? file.get<std::string>() : "";
      if (shard.empty() || shard.find('/') != std::string::npos || shard == "." || shard == "..") {
        Fail(ErrorCode::kInvalidData, "[checkpoint] {}: weight_map['{}'] is {}; expected the name of a shard file in '{}'",
             (root / kIndex).string(), name, file.dump(), dir);
      }
      names_by_file[shard].push_back(name);
    }
    for (const auto& [file, names] : names_by_file) {
      if (!PathExists(root / file)) {
        Fail(ErrorCode::kInvalidData, "[checkpoint] shard '{}' listed in {} for tensor '{}' is missing", file, kIndex,
             names.front());
      }
      shard_files.push_back(file);
    }
  } else if (PathExists(root / "model.safetensors")) {
    shard_files.push_back("model.safetensors");
  } else {
    Fail(ErrorCode::kInvalidData, "[checkpoint] '{}' has neither model.safetensors nor {}", dir, kIndex);
  }

  for (const std::string& file : shard_files) {
    files_.push_back(std::make_unique<SafetensorsFile>((root / file).string()));
    std::set<std::string> in_file;
    for (const SafetensorsTensor& t : files_.back()->tensors()) {
      if (!by_name_.emplace(t.name, tensors_.size()).second) {
        Fail(ErrorCode::kInvalidData, "[checkpoint] tensor '{}' appears in more than one shard ({} too)", t.name, file);
      }
      in_file.insert(t.name);
      tensors_.push_back({&t, file, files_.back().get()});
    }
    for (const std::string& name : names_by_file[file]) {
      if (!in_file.contains(name)) {
        Fail(ErrorCode::kInvalidData, "[checkpoint] {} maps tensor '{}' to '{}', which does not contain it", kIndex,
             name, file);
      }
    }
  }
  const std::set<std::string> shards(shard_files.begin(), shard_files.end());
  std::error_code error;  // a broken link or an unreadable entry is simply not one of the other files
  for (const auto& entry : std::filesystem::directory_iterator(root, error)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_regular_file(error) && !shards.contains(name) && name != kIndex) other_files_.push_back(name);
  }
  std::sort(other_files_.begin(), other_files_.end());
}

const SafetensorsTensor* Checkpoint::Find(const std::string& name) const {
  const auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : tensors_[it->second].tensor;
}

void Checkpoint::Release(const std::string& name) const {
  const auto it = by_name_.find(name);
  if (it != by_name_.end()) tensors_[it->second].source->Release(*tensors_[it->second].tensor);
}

int64_t Checkpoint::weight_bytes() const {
  int64_t bytes = 0;
  for (const CheckpointTensor& t : tensors_) bytes += t.tensor->num_bytes;
  return bytes;
}

}  // namespace fp4forge
