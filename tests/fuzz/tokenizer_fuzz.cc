// libFuzzer target: a tokenizer file. A first byte 'S' makes the rest a SentencePiece
// tokenizer.model, anything else makes the whole input a tokenizer.json. A tokenizer that loads
// encodes a multilingual text and decodes the ids.
#include <cstdint>

#include "fp4forge/base/error.h"
#include "fp4forge/engine/tokenizer.h"
#include "scratch.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace fp4forge;
  const std::string_view input = fuzz::AsText(data, size);
  const bool sentencepiece = input.starts_with('S');
  const auto path = fuzz::ScratchDir() / (sentencepiece ? "tokenizer.model" : "tokenizer.json");
  fuzz::WriteFile(path, sentencepiece ? input.substr(1) : input);
  try {
    const engine::Tokenizer tokenizer = engine::Tokenizer::FromFile(path.string());
    const std::vector<int32_t> ids = tokenizer.Encode("Hello,  world!\n\n日本語 テキスト 🙂 e\u0301 12345 <|endoftext|>");
    (void)tokenizer.Decode(ids);
    (void)tokenizer.TokenId("<s>");
  } catch (const Error&) {
  }
  return 0;
}
