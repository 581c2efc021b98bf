// Tokenizers of the two file formats models ship: Hugging Face tokenizer.json with a BPE model
// (byte-level BPE of GPT-2, Llama 3, Qwen: the file's own pre-tokenizer regexes, run by PCRE2 with
// Unicode properties; BPE with byte fallback over "▁"-marked words of Llama 2, Mistral), ids equal to
// the `tokenizers` library's; and SentencePiece tokenizer.model (unigram or BPE), run by Debian's
// libsentencepiece, ids equal to the `sentencepiece` library's. Decode(Encode(s)) == s for
// byte-level models.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace fp4forge::engine {

class Tokenizer {
 public:
  // Reads `path`: a tokenizer.json, or a SentencePiece model (a name ending in .model). Throws
  // Error(kInvalidData) naming the file and key for a malformed file, Error(kUnsupported) for a model,
  // normalizer, pre-tokenizer or decoder type it does not implement.
  static Tokenizer FromFile(const std::string& path);
  // DIR/tokenizer.json if it exists, else DIR/tokenizer.model; Error(kInvalidArgument) naming both
  // when neither does.
  static Tokenizer FromDirectory(const std::string& dir);
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // Text to ids; added tokens (<|begin_of_text|>, ...) in the text are matched as themselves. No BOS is
  // added: callers prepend it where they want it.
  std::vector<int32_t> Encode(std::string_view text) const;
  // Ids to text (added tokens as their content; ids beyond the tokenizer's, e.g. of a padded model
  // vocabulary, give nothing, as in `tokenizers`).
  std::string Decode(const std::vector<int32_t>& ids) const;
  int64_t vocab_size() const;  // largest id + 1
  // The id of an added token's content (e.g. "<|begin_of_text|>"), or -1.
  int32_t TokenId(std::string_view content) const;

 private:
  struct Impl;
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace fp4forge::engine
