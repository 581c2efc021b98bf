// What eval, run and tokenize share: loading a model the way a user expects (validated first, its
// own tokenizer beside it) and reading text files.
#pragma once

#include <memory>
#include <string>

#include "fp4forge/engine/model.h"
#include "fp4forge/engine/tokenizer.h"

namespace fp4forge::cli {

// Refuses a checkpoint `fp4forge inspect` calls invalid (Error naming its findings), then maps it.
std::unique_ptr<engine::Model> LoadModel(const std::string& dir, int threads);
// DIR/tokenizer.json or DIR/tokenizer.model; checks that its ids fit the model's vocabulary when a model is given.
engine::Tokenizer LoadTokenizer(const std::string& dir, const engine::Model* model);
// The whole file; Error naming it when unreadable or empty.
std::string ReadTextFile(const std::string& path);
// Whitespace-separated non-negative token ids; Error naming the file and the first bad entry.
std::vector<int32_t> ReadTokenIds(const std::string& path);

}  // namespace fp4forge::cli
