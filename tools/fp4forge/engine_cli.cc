#include "engine_cli.h"

#include <filesystem>
#include <cstdlib>
#include <sstream>

#include <fmt/format.h>

#include "fp4forge/base/error.h"
#include "fp4forge/io/files.h"
#include "fp4forge/pipeline/inspect_checkpoint.h"

namespace fp4forge::cli {

std::unique_ptr<engine::Model> LoadModel(const std::string& dir, int threads) {
  std::error_code not_a_directory;
  if (!std::filesystem::is_directory(dir, not_a_directory)) {
    Fail(ErrorCode::kInvalidArgument, "[model] got {}, expected a checkpoint directory (config.json + *.safetensors)", dir);
  }
  const InspectReport report = InspectCheckpoint(dir);
  if (!report.valid()) {
    std::string findings;
    for (const Finding& f : report.errors) findings += fmt::format("\n  {}: {} (fix: {})", f.where, f.what, f.fix);
    Fail(ErrorCode::kInvalidData, "[model] got {}, which fp4forge inspect calls invalid ({}):{}", dir, report.dialect,
         findings);
  }
  return std::make_unique<engine::Model>(dir, threads);
}

engine::Tokenizer LoadTokenizer(const std::string& dir, const engine::Model* model) {
  engine::Tokenizer tokenizer = engine::Tokenizer::FromDirectory(dir);
  if (model && tokenizer.vocab_size() > model->config().vocab_size) {
    Fail(ErrorCode::kInvalidData, "[tokenizer] got {}'s tokenizer with ids up to {}, expected fewer than the model's "
         "vocab_size {}", dir, tokenizer.vocab_size() - 1, model->config().vocab_size);
  }
  return tokenizer;
}

std::string ReadTextFile(const std::string& path) {
  std::string text = ReadRegularFile(path, "[text]");
  if (text.empty()) Fail(ErrorCode::kInvalidArgument, "[text] got an empty file {}, expected text", path);
  return text;
}

std::vector<int32_t> ReadTokenIds(const std::string& path) {
  std::istringstream in(ReadTextFile(path));
  std::vector<int32_t> ids;
  std::string word;
  while (in >> word) {
    char* end = nullptr;
    const long long v = std::strtoll(word.c_str(), &end, 10);
    if (*end != '\0' || v < 0 || v > (1 << 30)) {
      Fail(ErrorCode::kInvalidArgument, "[tokens] got \"{}\" in {}, expected non-negative token ids", word, path);
    }
    ids.push_back(static_cast<int32_t>(v));
  }
  return ids;
}

}  // namespace fp4forge::cli
