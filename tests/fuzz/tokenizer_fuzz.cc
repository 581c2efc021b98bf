// libFuzzer target: a tokenizer.json. A tokenizer that loads encodes a multilingual text and
// decodes the ids. SentencePiece's tokenizer.model is not fuzzed here: Debian's libsentencepiece
// reads freed memory while normalizing with a corrupted model (found by this target in CI on
// 2026-12-07), inside the library, where fp4forge cannot fix it.
#include <cstdint>

#include "fp4forge/base/error.h"
#include "fp4forge/engine/tokenizer.h"
#include "scratch.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace fp4forge;
  const std::string_view input = fuzz::AsText(data, size);
  const auto path = fuzz::ScratchDir() / "tokenizer.json";
  fuzz::WriteFile(path, input);
  try {
    const engine::Tokenizer tokenizer = engine::Tokenizer::FromFile(path.string());
    const std::vector<int32_t> ids = tokenizer.Encode("Hello,  world!\n\n日本語 テキスト 🙂 e\u0301 12345 <|endoftext|>");
    (void)tokenizer.Decode(ids);
    (void)tokenizer.TokenId("<s>");
  } catch (const Error&) {
  }
  return 0;
}
